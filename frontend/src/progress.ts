// The order's progress step by step: the pipeline's steps (the labels the staff timeline
// shows) in a shopper's words, read from the order's state and history.
import type { Order } from "./types";

export type StepStatus = "done" | "current" | "failed" | "todo";

export interface ProgressStep {
  step: string; // the pipeline's label, as in the staff timeline
  label: string;
  status: StepStatus;
  note: string;
}

export const STEPS: { step: string; label: string }[] = [
  { step: "validate_order", label: "Items reserved" },
  { step: "process_payment", label: "Payment authorised" },
  { step: "update_inventory", label: "Order confirmed, payment taken" },
  { step: "generate_receipt", label: "Receipt ready" },
  { step: "send_notification", label: "Confirmation emailed" },
];

// How many steps an order in this state has finished for sure.
const DONE_BY_STATE: Record<string, number> = { PENDING: 0, VALIDATED: 1, PAID: 2, CONFIRMED: 3, COMPLETED: 5 };
// Where each failure end stopped: the step that failed.
const FAILED_AT: Record<string, string> = { REJECTED: "validate_order", PAYMENT_FAILED: "process_payment" };

export function orderProgress(order: Order): ProgressStep[] {
  const succeeded = new Set(order.history.filter((e) => e.outcome === "succeeded").map((e) => e.step));
  const retrying = (step: string) => {
    const last = order.history.filter((e) => e.step === step).at(-1);
    return last?.outcome === "retrying";
  };
  let failedStep: string | null = FAILED_AT[order.state] ?? null;
  if (!failedStep && (order.state === "FAILED" || order.state === "CANCELLED")) {
    failedStep = STEPS.find(({ step }) => !succeeded.has(step))?.step ?? null;
  }
  const failedIndex = STEPS.findIndex(({ step }) => step === failedStep);
  const doneCount = failedIndex >= 0 ? failedIndex : (DONE_BY_STATE[order.state] ?? 0);
  let currentFound = false;
  return STEPS.map(({ step, label }, index) => {
    let status: StepStatus;
    let note = "";
    if (index === failedIndex) {
      status = "failed";
      note = order.state === "CANCELLED" ? "Cancelled by the shop" : "Did not go through";
    } else if (index < doneCount || (failedIndex < 0 && succeeded.has(step))) {
      status = "done";
    } else if (!order.is_final && !currentFound) {
      status = "current";
      currentFound = true;
      if (step === "process_payment" && order.payment_action) note = "Waiting for you to confirm with your bank";
      else if (order.waiting) note = "Waiting: it goes on shortly, nothing to do";
      else if (retrying(step)) note = "Taking a little longer: trying again";
      else note = "In progress";
    } else {
      status = "todo";
    }
    return { step, label, status, note };
  });
}

import type { Stripe, StripeCardElement } from "@stripe/stripe-js";
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { placeOrder } from "../api";
import { pricedLines, type CartLine } from "../cart";
import { CheckoutAttempt } from "../checkout";
import { describeError, lineProblemText, placementProblems, type PlacementProblems } from "../messages";
import { formatMoney, totalsOf } from "../money";
import { STRIPE_UNAVAILABLE, stripeFor } from "../stripe";
import type { ShopConfig } from "../types";

export const PENDING_ORDER_KEY = "shop.pending-order";
const EMAIL_KEY = "shop.email";

interface Props {
  config: ShopConfig | null;
  configError: unknown;
  lines: CartLine[];
  currency: string;
  onLineProblems: (messages: Record<string, string>) => void;
  onPlaced: (reference: string) => void;
}

const NO_PROBLEMS: PlacementProblems = { general: [], bySku: {} };

/** Stripe Elements' card field, mounted once Stripe.js has loaded. */
function CardField({
  publishableKey,
  onReady,
  onChange,
  error,
}: {
  publishableKey: string;
  onReady: (stripe: Stripe, card: StripeCardElement) => void;
  onChange: () => void;
  error?: string;
}) {
  const mountRef = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState(false);
  const labelId = useId();
  useEffect(() => {
    let card: StripeCardElement | null = null;
    let stopped = false;
    stripeFor(publishableKey).then((stripe) => {
      if (stopped) return;
      if (!stripe || !mountRef.current) return setFailed(true);
      const created = stripe.elements().create("card", { hidePostalCode: true });
      created.mount(mountRef.current);
      created.on("change", onChange);
      card = created;
      onReady(stripe, created);
    });
    return () => {
      stopped = true;
      card?.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- mounted once per key
  }, [publishableKey]);
  return (
    <div className="field">
      <span className="label" id={labelId}>
        Card
      </span>
      <div className="card-element" ref={mountRef} aria-labelledby={labelId} />
      {(failed || error) && (
        <p className="field-error" role="alert">
          {failed ? STRIPE_UNAVAILABLE : error}
        </p>
      )}
    </div>
  );
}

export function Checkout({ config, configError, lines, currency, onLineProblems, onPlaced }: Props) {
  const [email, setEmail] = useState(() => localStorage.getItem(EMAIL_KEY) ?? "");
  const [method, setMethod] = useState("");
  const [placing, setPlacing] = useState(false);
  const [problems, setProblems] = useState<PlacementProblems>(NO_PROBLEMS);
  const [cardError, setCardError] = useState("");
  const attempt = useRef(new CheckoutAttempt());
  const placingNow = useRef(false); // a second click lands before React re-renders the button
  const stripe = useRef<{ stripe: Stripe; card: StripeCardElement } | null>(null);
  // The PaymentMethod made from the card as typed: a retry sends it again (same request, same key).
  const cardMethod = useRef<string | null>(null);
  const summaryRef = useRef<HTMLDivElement>(null);
  const emailId = useId();
  const publishableKey = config?.stripe_publishable_key ?? "";
  const testMethods = config?.test_payment_methods ?? [];
  const chosenMethod = method || testMethods[0]?.id || "";

  useEffect(() => {
    if (problems.general.length || problems.email || problems.payment) summaryRef.current?.focus();
  }, [problems]);

  const totals = totalsOf(pricedLines(lines), config?.tax_rate ?? "0");

  async function paymentMethod(): Promise<string | null> {
    if (!publishableKey) return chosenMethod;
    if (cardMethod.current) return cardMethod.current;
    if (!stripe.current) {
      setCardError(STRIPE_UNAVAILABLE);
      return null;
    }
    const result = await stripe.current.stripe.createPaymentMethod({ type: "card", card: stripe.current.card });
    if (result.error) {
      setCardError(result.error.message ?? "Check your card details.");
      return null;
    }
    cardMethod.current = result.paymentMethod.id;
    return cardMethod.current;
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (placingNow.current) return;
    const blocked = lines.filter((line) => line.problem);
    if (lines.length === 0) return setProblems({ ...NO_PROBLEMS, general: ["Your cart is empty. Add a product first."] });
    if (blocked.length) {
      return setProblems({
        ...NO_PROBLEMS,
        general: blocked.map((line) => `${line.name}: ${lineProblemText(line.problem!)}`),
      });
    }
    placingNow.current = true;
    setPlacing(true);
    setProblems(NO_PROBLEMS);
    setCardError("");
    try {
      const paymentMethodId = await paymentMethod();
      if (!paymentMethodId) return;
      const body = {
        email: email.trim(),
        lines: lines.map((line) => ({ sku: line.sku, quantity: line.quantity })),
        payment_method: paymentMethodId,
      };
      const result = await placeOrder(body, attempt.current.keyFor(body));
      if (result.kind === "placed") {
        attempt.current.settle();
        cardMethod.current = null;
        localStorage.setItem(EMAIL_KEY, body.email);
        onPlaced(result.reference);
        return;
      }
      if (result.status === 409) attempt.current.settle();
      const found = placementProblems(result.status, result.errors, body.lines.map((line) => line.sku));
      if (Object.keys(found.bySku).length) {
        onLineProblems(found.bySku);
        found.general.push("Some items in your cart need a change: see the marked lines.");
      }
      setProblems(found);
    } catch (error) {
      setProblems({ ...NO_PROBLEMS, general: [describeError(error, true)] });
    } finally {
      placingNow.current = false;
      setPlacing(false);
    }
  }

  const summary = [...problems.general, problems.email, problems.payment].filter(Boolean) as string[];
  return (
    <section className="checkout" id="checkout" aria-labelledby="checkout-heading">
      <h2 id="checkout-heading">Checkout</h2>
      <form onSubmit={submit} noValidate aria-describedby={summary.length ? "checkout-errors" : undefined}>
        <div className="field">
          <label htmlFor={emailId}>Email for your receipt</label>
          <input
            id={emailId}
            type="email"
            autoComplete="email"
            required
            value={email}
            aria-invalid={problems.email ? true : undefined}
            aria-describedby={problems.email ? `${emailId}-error` : undefined}
            onChange={(event) => setEmail(event.target.value)}
          />
          {problems.email && (
            <p className="field-error" id={`${emailId}-error`}>
              {problems.email}
            </p>
          )}
        </div>
        {publishableKey ? (
          <CardField
            publishableKey={publishableKey}
            error={cardError || problems.payment}
            onReady={(loaded, card) => (stripe.current = { stripe: loaded, card })}
            onChange={() => {
              cardMethod.current = null;
              setCardError("");
            }}
          />
        ) : (
          <fieldset className="field payment-methods">
            <legend>
              Payment method <span className="badge">test mode</span>
            </legend>
            {config === null && <p>{configError ? describeError(configError) : "Loading payment methods…"}</p>}
            {testMethods.map((option) => (
              <label key={option.id} className="radio">
                <input
                  type="radio"
                  name="payment_method"
                  value={option.id}
                  checked={chosenMethod === option.id}
                  onChange={() => setMethod(option.id)}
                />
                {option.label}
              </label>
            ))}
            {problems.payment && <p className="field-error">{problems.payment}</p>}
          </fieldset>
        )}
        <div ref={summaryRef} tabIndex={-1} id="checkout-errors" className="error-summary" role="alert">
          {summary.length > 0 && (
            <ul>
              {summary.map((message) => (
                <li key={message}>{message}</li>
              ))}
            </ul>
          )}
        </div>
        <button type="submit" className="primary" disabled={placing} aria-busy={placing}>
          {placing ? "Placing your order…" : `Place order and pay ${formatMoney(totals.total, currency)}`}
        </button>
      </form>
    </section>
  );
}

// The shop API's shapes, as the page reads them (see /api/schema/).

export interface Product {
  sku: string;
  name: string;
  price: string; // a decimal string, "12.50"
  currency: string;
  available: number;
  low_stock: boolean;
}

export interface PaymentMethodOption {
  id: string;
  label: string;
}

export interface ShopConfig {
  shop_name: string;
  stripe_publishable_key: string;
  test_mode: boolean;
  test_payment_methods: PaymentMethodOption[];
  tax_rate: string; // "0.2000" is 20 %
}

export type OrderStateName =
  | "PENDING"
  | "VALIDATED"
  | "PAID"
  | "CONFIRMED"
  | "COMPLETED"
  | "REJECTED"
  | "PAYMENT_FAILED"
  | "FAILED"
  | "CANCELLED";

export interface OrderLine {
  sku: string;
  name: string;
  quantity: number;
  unit_price: string;
  line_total: string;
  units_left: number | null; // on an order refused for stock: what was left of a short line
}

export interface OrderEvent {
  step: string;
  outcome: string;
  attempt: number;
  from_state: string;
  to_state: string;
  error: string;
  at: string;
}

export interface PaymentAction {
  type: "authenticate";
  client_secret: string;
}

export interface Refund {
  amount: string;
  currency: string;
  reason: string;
  credit_note: string;
  refunded_at: string;
}

export interface Order {
  reference: string;
  state: OrderStateName;
  is_final: boolean;
  email: string;
  currency: string;
  lines: OrderLine[];
  subtotal: string;
  tax: string;
  total: string;
  failure_code: string;
  failure_reason: string;
  payment_status: string | null;
  payment_action: PaymentAction | null;
  receipt_url: string | null;
  refunds: Refund[];
  amount_refunded: string;
  created_at: string;
  history: OrderEvent[];
}

export interface PlaceOrderBody {
  email: string;
  lines: { sku: string; quantity: number }[];
  payment_method: string;
}

// DRF's field errors: a list of messages, or nested per field / per line position.
export type FieldErrors = string[] | { [field: string]: FieldErrors };

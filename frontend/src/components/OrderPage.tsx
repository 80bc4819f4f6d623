import { useEffect, useRef, useState } from "react";
import { fetchOrder, receiptHref } from "../api";
import { saveCart } from "../cart";
import { describeError, failureExplanation, orderHeadline } from "../messages";
import { formatMoment, formatMoney, toCents } from "../money";
import { pollOrder, type OrderPoller } from "../polling";
import { orderProgress } from "../progress";
import { AUTHENTICATION_FAILED, STRIPE_UNAVAILABLE, stripeFor } from "../stripe";
import type { Order, ShopConfig } from "../types";
import { PENDING_ORDER_KEY } from "./Checkout";

interface Props {
  reference: string;
  config: ShopConfig | null;
  navigate: (to: string) => void;
}

const PAID_STATES = new Set(["PAID", "CONFIRMED", "COMPLETED"]);
const STEP_STATUS_WORDS = { done: "done", current: "in progress", failed: "did not go through", todo: "not yet" };

/** The shopper's page of one order: where it stands, live; its lines and totals; its receipt. */
export function OrderPage({ reference, config, navigate }: Props) {
  const [order, setOrder] = useState<Order | null>(null);
  const [trouble, setTrouble] = useState<{ message: string; retryInMs: number } | null>(null);
  const [missing, setMissing] = useState(false);
  const [authMessage, setAuthMessage] = useState("");
  const [authenticating, setAuthenticating] = useState(false);
  const poller = useRef<OrderPoller | null>(null);
  const authenticated = useRef(new Set<string>());
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => headingRef.current?.focus(), [reference]);

  useEffect(() => {
    const current = pollOrder(reference, {
      fetchOrder,
      onOrder: setOrder,
      onTrouble: (error, retryInMs) => setTrouble({ message: describeError(error), retryInMs }),
      onRecovered: () => setTrouble(null),
      onMissing: () => setMissing(true),
    });
    poller.current = current;
    const online = () => current.pollNow();
    window.addEventListener("online", online);
    return () => {
      current.stop();
      window.removeEventListener("online", online);
    };
  }, [reference]);

  // The cart bought by this order empties once the money is safe; after a decline it stays.
  useEffect(() => {
    if (order && PAID_STATES.has(order.state) && localStorage.getItem(PENDING_ORDER_KEY) === reference) {
      saveCart({});
      localStorage.removeItem(PENDING_ORDER_KEY);
    }
  }, [order, reference]);

  const secret = order?.payment_action?.client_secret ?? "";
  const publishableKey = config?.stripe_publishable_key ?? "";

  async function authenticate() {
    if (!secret || !publishableKey) return;
    authenticated.current.add(secret);
    setAuthenticating(true);
    setAuthMessage("");
    try {
      const stripe = await stripeFor(publishableKey);
      if (!stripe) return setAuthMessage(STRIPE_UNAVAILABLE);
      const result = await stripe.handleNextAction({ clientSecret: secret });
      if (result.error) setAuthMessage(AUTHENTICATION_FAILED);
    } finally {
      setAuthenticating(false);
      poller.current?.pollNow();
    }
  }

  // The bank's check opens by itself once per payment; the button below opens it again.
  useEffect(() => {
    if (secret && publishableKey && !authenticated.current.has(secret)) void authenticate();
    // eslint-disable-next-line react-hooks/exhaustive-deps -- once per client secret
  }, [secret, publishableKey]);

  const backToCart = (
    <a
      href="/"
      onClick={(event) => {
        event.preventDefault();
        navigate("/");
      }}
    >
      Back to your cart
    </a>
  );

  const failure = order && order.is_final && order.state !== "COMPLETED" ? failureExplanation(order) : null;

  return (
    <article className="order-page" aria-labelledby="order-heading">
      <h1 id="order-heading" ref={headingRef} tabIndex={-1}>
        Your order
      </h1>
      <p className="reference">
        Order number <code>{reference}</code>
        {order && (
          <>
            <br />
            Placed on <time dateTime={order.created_at}>{formatMoment(order.created_at)}</time>
          </>
        )}
      </p>
      {trouble && (
        <div className="notice" role="alert">
          <p>
            {trouble.message} Trying again in {Math.round(trouble.retryInMs / 1000)} s.
          </p>
          <button type="button" onClick={() => poller.current?.pollNow()}>
            Try now
          </button>
        </div>
      )}
      {missing && (
        <p className="notice" role="alert">
          We can't find this order. Check the link in your email. {backToCart}
        </p>
      )}
      {!order && !missing && <p>Loading your order…</p>}
      {order && (
        <>
          <p className={`status status-${order.state.toLowerCase()}`} role="status" data-state={order.state}>
            {orderHeadline(order)}
          </p>
          {failure && (
            <div className="failure">
              <p>{failure.reason}</p>
              {failure.shortLines.length > 0 && (
                <ul className="short-lines">
                  {failure.shortLines.map((text) => (
                    <li key={text}>{text}</li>
                  ))}
                </ul>
              )}
              {failure.money && <p>{failure.money}</p>}
              <p>Your cart is kept. {backToCart}</p>
            </div>
          )}
          {secret && (
            <div className="notice">
              <p>Your bank asks you to confirm this payment.</p>
              {authMessage && <p role="alert">{authMessage}</p>}
              <button type="button" className="primary" disabled={authenticating} onClick={() => void authenticate()}>
                {authenticating ? "Waiting for your bank…" : "Confirm the payment with your bank"}
              </button>
            </div>
          )}
          {!secret && authMessage && <p role="alert">{authMessage}</p>}
          <ol className="progress" aria-label="Progress">
            {orderProgress(order).map((step) => (
              <li key={step.step} className={`step step-${step.status}`} data-step={step.step}>
                <span className="step-label">{step.label}</span>
                <span className="visually-hidden">: {STEP_STATUS_WORDS[step.status]}</span>
                {step.note && step.status !== "done" && <span className="step-note">{step.note}</span>}
              </li>
            ))}
          </ol>
          {order.refunds.length > 0 && (
            <div className="refunds">
              <h2>Refunds</h2>
              <ul>
                {order.refunds.map((refund) => (
                  <li key={refund.refunded_at}>
                    {formatMoney(toCents(refund.amount), refund.currency)} refunded on{" "}
                    <time dateTime={refund.refunded_at}>{formatMoment(refund.refunded_at)}</time>
                    {refund.reason && <span className="refund-reason">{refund.reason}</span>}
                  </li>
                ))}
              </ul>
              <p>The money goes back to the card you paid with; your bank may take a few days to show it.</p>
            </div>
          )}
          {order.receipt_url && (
            <p className="receipt">
              <a className="button primary" href={receiptHref(order.reference)}>
                Download your receipt (PDF)
              </a>
            </p>
          )}
          <h2>What you ordered</h2>
          <table className="order-lines">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col" className="number">Quantity</th>
                <th scope="col" className="number">Line total</th>
              </tr>
            </thead>
            <tbody>
              {order.lines.map((line) => (
                <tr key={line.sku}>
                  <td>
                    {line.name}
                    <span className="unit-price">{formatMoney(toCents(line.unit_price), order.currency)} each</span>
                  </td>
                  <td className="number">{line.quantity}</td>
                  <td className="number">{formatMoney(toCents(line.line_total), order.currency)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row" colSpan={2}>Subtotal</th>
                <td className="number">{formatMoney(toCents(order.subtotal), order.currency)}</td>
              </tr>
              <tr>
                <th scope="row" colSpan={2}>Tax</th>
                <td className="number">{formatMoney(toCents(order.tax), order.currency)}</td>
              </tr>
              <tr className="grand-total">
                <th scope="row" colSpan={2}>Total</th>
                <td className="number">{formatMoney(toCents(order.total), order.currency)}</td>
              </tr>
              {toCents(order.amount_refunded) > 0 && (
                <>
                  <tr className="refunded">
                    <th scope="row" colSpan={2}>Refunded</th>
                    <td className="number">−{formatMoney(toCents(order.amount_refunded), order.currency)}</td>
                  </tr>
                  <tr className="grand-total">
                    <th scope="row" colSpan={2}>Paid after refunds</th>
                    <td className="number" data-testid="net-paid">
                      {formatMoney(toCents(order.total) - toCents(order.amount_refunded), order.currency)}
                    </td>
                  </tr>
                </>
              )}
            </tfoot>
          </table>
          <p className="email-note">We send updates to {order.email}.</p>
        </>
      )}
    </article>
  );
}

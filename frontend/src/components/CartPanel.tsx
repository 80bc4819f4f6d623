import { useState } from "react";
import { pricedLines, unitCount, type CartLine } from "../cart";
import { formatMoney, formatRate, toCents, totalsOf } from "../money";
import { lineProblemText } from "../messages";

interface Props {
  lines: CartLine[];
  currency: string;
  taxRate: string;
  messages: Record<string, string>;
  onQuantity: (sku: string, quantity: number) => void;
  onRemove: (sku: string) => void;
}

function QuantityField({ line, onQuantity }: { line: CartLine; onQuantity: Props["onQuantity"] }) {
  // Keyed by the quantity: a change from elsewhere (the buttons, "Change to") starts a new draft.
  const [draft, setDraft] = useState(String(line.quantity));
  const commit = () => {
    const quantity = Number.parseInt(draft, 10);
    if (Number.isInteger(quantity) && quantity >= 1) onQuantity(line.sku, quantity);
    else setDraft(String(line.quantity)); // an empty or bad entry leaves the quantity as it was
  };
  const id = `quantity-${line.sku}`;
  return (
    <div className="quantity">
      <button
        type="button"
        aria-label={`One fewer ${line.name}`}
        disabled={line.quantity <= 1}
        onClick={() => onQuantity(line.sku, line.quantity - 1)}
      >
        −
      </button>
      <label className="visually-hidden" htmlFor={id}>
        Quantity of {line.name}
      </label>
      <input
        id={id}
        type="number"
        inputMode="numeric"
        min={1}
        max={line.available || undefined}
        value={draft}
        onChange={(event) => setDraft(event.target.value)}
        onBlur={commit}
        onKeyDown={(event) => {
          if (event.key === "Enter") {
            event.preventDefault();
            commit();
          }
        }}
      />
      <button
        type="button"
        aria-label={`One more ${line.name}`}
        disabled={line.available > 0 && line.quantity >= line.available}
        onClick={() => onQuantity(line.sku, line.quantity + 1)}
      >
        +
      </button>
    </div>
  );
}

export function CartPanel({ lines, currency, taxRate, messages, onQuantity, onRemove }: Props) {
  const count = unitCount(lines);
  const buyable = pricedLines(lines);
  const totals = totalsOf(buyable, taxRate);
  return (
    <section className="cart" id="cart" aria-labelledby="cart-heading">
      <h2 id="cart-heading">
        Your cart{count > 0 && ` (${count} ${count === 1 ? "item" : "items"})`}
      </h2>
      {lines.length === 0 ? (
        <p>Your cart is empty. Add a product to start your order.</p>
      ) : (
        <>
          <ul className="cart-lines">
            {lines.map((line) => {
              const problem = messages[line.sku] ?? (line.problem && lineProblemText(line.problem));
              const priced = buyable.includes(line);
              return (
                <li key={line.sku} className={problem ? "cart-line has-problem" : "cart-line"} data-sku={line.sku}>
                  <div className="cart-line-head">
                    <span className="cart-line-name">{line.name}</span>
                    {priced && (
                      <span className="cart-line-total">
                        {formatMoney(toCents(line.unitPrice) * line.quantity, line.currency)}
                      </span>
                    )}
                  </div>
                  {problem && (
                    <p className="line-problem" id={`problem-${line.sku}`}>
                      {problem}{" "}
                      {line.problem?.kind === "short" && (
                        <button type="button" className="link-button" onClick={() => onQuantity(line.sku, line.problem?.kind === "short" ? line.problem.available : 1)}>
                          Change to {line.problem.available}
                        </button>
                      )}
                    </p>
                  )}
                  <div className="cart-line-controls">
                    {priced && (
                      <QuantityField key={line.quantity} line={line} onQuantity={onQuantity} />
                    )}
                    <button type="button" className="link-button" onClick={() => onRemove(line.sku)} aria-label={`Remove ${line.name}`}>
                      Remove
                    </button>
                  </div>
                </li>
              );
            })}
          </ul>
          <dl className="totals">
            <div>
              <dt>Subtotal</dt>
              <dd data-testid="subtotal">{formatMoney(totals.subtotal, currency)}</dd>
            </div>
            <div>
              <dt>Tax ({formatRate(taxRate)})</dt>
              <dd data-testid="tax">{formatMoney(totals.tax, currency)}</dd>
            </div>
            <div className="grand-total">
              <dt>Total</dt>
              <dd data-testid="total">{formatMoney(totals.total, currency)}</dd>
            </div>
          </dl>
        </>
      )}
    </section>
  );
}

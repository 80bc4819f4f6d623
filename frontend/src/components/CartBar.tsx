import { pricedLines, unitCount, type CartLine } from "../cart";
import { formatMoney, totalsOf } from "../money";

interface Props {
  lines: CartLine[];
  currency: string;
  taxRate: string;
}

/**
 * On a phone the catalog comes first and the cart a long scroll below it: this bar, pinned to
 * the bottom of the screen once the cart holds something, says what is in it and jumps to the
 * cart, the checkout right below it. From 52rem the cart sits beside the catalog and the bar is hidden (shop.css).
 */
export function CartBar({ lines, currency, taxRate }: Props) {
  const count = unitCount(lines);
  if (lines.length === 0) return null;
  const total = totalsOf(pricedLines(lines), taxRate).total;
  return (
    <nav className="cart-bar" aria-label="Your cart">
      <p className="cart-bar-summary">
        <span className="cart-bar-count">
          {count} {count === 1 ? "item" : "items"}
        </span>{" "}
        <span className="cart-bar-total">{formatMoney(total, currency)}</span>
      </p>
      <a className="button primary" href="#cart">
        View cart and check out
      </a>
    </nav>
  );
}

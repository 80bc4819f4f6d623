import type { Cart } from "../cart";
import { formatMoney, toCents } from "../money";
import type { Product } from "../types";

interface Props {
  products: Product[];
  cart: Cart;
  cartCurrency: string | null;
  onAdd: (sku: string) => void;
}

function availability(product: Product): { text: string; tone: string } {
  if (product.available <= 0) return { text: "Sold out", tone: "sold-out" };
  if (product.low_stock) return { text: `Only ${product.available} left`, tone: "low" };
  return { text: "In stock", tone: "in-stock" };
}

export function Catalog({ products, cart, cartCurrency, onAdd }: Props) {
  if (products.length === 0) return <p>Nothing is for sale right now. Please come back later.</p>;
  return (
    <ul className="catalog">
      {products.map((product) => {
        const inCart = cart[product.sku] ?? 0;
        const { text, tone } = availability(product);
        const soldOut = product.available <= 0;
        const allInCart = !soldOut && inCart >= product.available;
        // One order is one payment in one currency: a product priced in another waits for its own order.
        const otherCurrency = !soldOut && cartCurrency !== null && product.currency !== cartCurrency;
        const noteId = `currency-note-${product.sku}`;
        return (
          <li key={product.sku} className="product" data-sku={product.sku}>
            <h2 className="product-name">{product.name}</h2>
            <p className="product-price">{formatMoney(toCents(product.price), product.currency)}</p>
            <p className={`availability ${tone}`}>{text}</p>
            <button
              type="button"
              className="add"
              disabled={soldOut || allInCart || otherCurrency}
              aria-label={soldOut ? `Sold out: ${product.name}` : allInCart ? undefined : `Add to cart: ${product.name}`}
              aria-describedby={otherCurrency ? noteId : undefined}
              onClick={() => onAdd(product.sku)}
            >
              {soldOut ? "Sold out" : allInCart ? "All in your cart" : "Add to cart"}
            </button>
            {otherCurrency && (
              <p className="currency-note" id={noteId}>
                Priced in {product.currency}; your cart is paid in {cartCurrency}. Order it on its own after this order.
              </p>
            )}
            {inCart > 0 && <p className="in-cart">{inCart} in your cart</p>}
          </li>
        );
      })}
    </ul>
  );
}

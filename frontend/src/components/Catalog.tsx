import type { Cart } from "../cart";
import { formatMoney, toCents } from "../money";
import type { Product } from "../types";

interface Props {
  products: Product[];
  cart: Cart;
  onAdd: (sku: string) => void;
}

function availability(product: Product): { text: string; tone: string } {
  if (product.available <= 0) return { text: "Sold out", tone: "sold-out" };
  if (product.low_stock) return { text: `Only ${product.available} left`, tone: "low" };
  return { text: "In stock", tone: "in-stock" };
}

export function Catalog({ products, cart, onAdd }: Props) {
  if (products.length === 0) return <p>Nothing is for sale right now. Please come back later.</p>;
  return (
    <ul className="catalog">
      {products.map((product) => {
        const inCart = cart[product.sku] ?? 0;
        const { text, tone } = availability(product);
        const soldOut = product.available <= 0;
        const allInCart = !soldOut && inCart >= product.available;
        return (
          <li key={product.sku} className="product" data-sku={product.sku}>
            <h2 className="product-name">{product.name}</h2>
            <p className="product-price">{formatMoney(toCents(product.price), product.currency)}</p>
            <p className={`availability ${tone}`}>{text}</p>
            <button
              type="button"
              className="add"
              disabled={soldOut || allInCart}
              aria-label={soldOut ? `Sold out: ${product.name}` : allInCart ? undefined : `Add to cart: ${product.name}`}
              onClick={() => onAdd(product.sku)}
            >
              {soldOut ? "Sold out" : allInCart ? "All in your cart" : "Add to cart"}
            </button>
            {inCart > 0 && <p className="in-cart">{inCart} in your cart</p>}
          </li>
        );
      })}
    </ul>
  );
}

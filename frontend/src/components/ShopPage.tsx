import { useEffect, useMemo, useState } from "react";
import { listProducts, orderPagePath } from "../api";
import { addToCart, cartCurrency, cartLines, loadCart, removeFromCart, saveCart, setQuantity, type Cart } from "../cart";
import { useRetrying } from "../hooks";
import { CATALOG_DOWN } from "../messages";
import type { ShopConfig } from "../types";
import { CartBar } from "./CartBar";
import { CartPanel } from "./CartPanel";
import { Catalog } from "./Catalog";
import { Checkout, PENDING_ORDER_KEY } from "./Checkout";

interface Props {
  config: ShopConfig | null;
  configError: unknown;
  navigate: (to: string) => void;
}

export function ShopPage({ config, configError, navigate }: Props) {
  const [catalogRound, setCatalogRound] = useState(0);
  const products = useRetrying(listProducts, catalogRound);
  const [cart, setCart] = useState<Cart>(() => loadCart());
  const [lineMessages, setLineMessages] = useState<Record<string, string>>({});

  useEffect(() => saveCart(cart), [cart]);

  const lines = useMemo(() => cartLines(cart, products.value ?? []), [cart, products.value]);
  const paidIn = useMemo(() => cartCurrency(cart, products.value ?? []), [cart, products.value]);
  const currency = paidIn ?? products.value?.[0]?.currency ?? "USD";
  const taxRate = config?.tax_rate ?? "0";
  const change = (next: Cart, sku: string) => {
    setCart(next);
    setLineMessages(({ [sku]: _dropped, ...rest }) => rest);
  };

  return (
    <div className="shop">
      <section className="catalog-section" aria-labelledby="catalog-heading">
        <h1 id="catalog-heading">Products</h1>
        {products.error !== null && <p className="notice" role="alert">{CATALOG_DOWN}</p>}
        {products.value === null && products.error === null && <p>Loading products…</p>}
        {products.value && (
          <Catalog products={products.value} cart={cart} cartCurrency={paidIn} onAdd={(sku) => change(addToCart(cart, sku), sku)} />
        )}
      </section>
      <aside className="checkout-column">
        <CartPanel
          lines={lines}
          currency={currency}
          taxRate={taxRate}
          messages={lineMessages}
          onQuantity={(sku, quantity) => change(setQuantity(cart, sku, quantity), sku)}
          onRemove={(sku) => change(removeFromCart(cart, sku), sku)}
        />
        <Checkout
          config={config}
          configError={configError}
          lines={lines}
          currency={currency}
          onLineProblems={(messages) => {
            setLineMessages(messages);
            setCatalogRound((n) => n + 1); // what is left now, to offer it
          }}
          onPlaced={(reference) => {
            localStorage.setItem(PENDING_ORDER_KEY, reference);
            navigate(orderPagePath(reference));
          }}
        />
      </aside>
      <CartBar lines={lines} currency={currency} taxRate={taxRate} />
    </div>
  );
}

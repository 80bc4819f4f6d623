// The cart: quantities per SKU, kept in localStorage across reloads, read against the catalog.
import type { Product } from "./types";

export type Cart = Record<string, number>;

export const CART_KEY = "shop.cart";

export function loadCart(storage: Storage = localStorage): Cart {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(CART_KEY) ?? "{}");
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed).filter(([, quantity]) => Number.isInteger(quantity) && (quantity as number) > 0),
    ) as Cart;
  } catch {
    return {}; // a cart written by an older page, or by hand: start afresh
  }
}

export function saveCart(cart: Cart, storage: Storage = localStorage): void {
  try {
    storage.setItem(CART_KEY, JSON.stringify(cart));
  } catch {
    // Private mode or a full quota: the cart still works, it just won't survive a reload.
  }
}

export function setQuantity(cart: Cart, sku: string, quantity: number): Cart {
  const next = { ...cart };
  if (Number.isFinite(quantity) && quantity >= 1) next[sku] = Math.floor(quantity);
  else delete next[sku];
  return next;
}

export const addToCart = (cart: Cart, sku: string, quantity = 1) => setQuantity(cart, sku, (cart[sku] ?? 0) + quantity);
export const removeFromCart = (cart: Cart, sku: string) => setQuantity(cart, sku, 0);

export type LineProblem =
  | { kind: "sold_out" }
  | { kind: "short"; available: number }
  | { kind: "unavailable" } // no longer in the catalog
  | { kind: "other_currency"; currency: string; cartCurrency: string };

export interface CartLine {
  sku: string;
  name: string;
  unitPrice: string;
  currency: string;
  quantity: number;
  available: number;
  problem: LineProblem | null;
}

/**
 * The currency the cart is paid in: that of its first line still in the catalog, or null for
 * an empty cart. An order is one payment in one currency (the API refuses a mix), so the shop
 * refuses to add a product priced in another: adding 15 USD and 10 EUR makes no total at all.
 */
export function cartCurrency(cart: Cart, products: Product[]): string | null {
  const bySku = new Map(products.map((product) => [product.sku, product]));
  for (const sku of Object.keys(cart)) {
    const product = bySku.get(sku);
    if (product) return product.currency;
  }
  return null;
}

/** The cart's lines in catalog order, each checked against what is available now. */
export function cartLines(cart: Cart, products: Product[]): CartLine[] {
  const bySku = new Map(products.map((product) => [product.sku, product]));
  const known = products.filter((product) => cart[product.sku]);
  const paidIn = cartCurrency(cart, products);
  const lines: CartLine[] = known.map((product) => {
    const quantity = cart[product.sku];
    let problem: LineProblem | null = null;
    if (paidIn && product.currency !== paidIn) problem = { kind: "other_currency", currency: product.currency, cartCurrency: paidIn };
    else if (product.available <= 0) problem = { kind: "sold_out" };
    else if (quantity > product.available) problem = { kind: "short", available: product.available };
    return {
      sku: product.sku,
      name: product.name,
      unitPrice: product.price,
      currency: product.currency,
      quantity,
      available: product.available,
      problem,
    };
  });
  for (const sku of Object.keys(cart).filter((sku) => !bySku.has(sku))) {
    lines.push({ sku, name: sku, unitPrice: "0", currency: "", quantity: cart[sku], available: 0, problem: { kind: "unavailable" } });
  }
  return lines;
}

const NOT_BUYABLE = new Set<LineProblem["kind"]>(["sold_out", "unavailable", "other_currency"]);

/** The lines the totals count: all but those that cannot be bought at all (sold out, gone, another currency). */
export const pricedLines = (lines: CartLine[]) => lines.filter((line) => !line.problem || !NOT_BUYABLE.has(line.problem.kind));

/** The units the cart's count shows: those of the priced lines, so "2 items" is what the subtotal adds up. */
export const unitCount = (lines: CartLine[]) => pricedLines(lines).reduce((sum, line) => sum + line.quantity, 0);


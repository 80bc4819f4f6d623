import { describe, expect, it } from "vitest";
import { addToCart, cartCurrency, cartLines, loadCart, pricedLines, removeFromCart, saveCart, setQuantity, unitCount } from "./cart";
import type { Product } from "./types";

const product = (sku: string, available: number, price = "10.00", currency = "USD"): Product => ({
  sku,
  name: `Product ${sku}`,
  price,
  currency,
  available,
  low_stock: available > 0 && available <= 5,
});

describe("the cart", () => {
  it("adds, changes and removes lines", () => {
    let cart = addToCart({}, "MUG");
    cart = addToCart(cart, "MUG");
    cart = addToCart(cart, "TEE", 3);
    expect(cart).toEqual({ MUG: 2, TEE: 3 });
    expect(setQuantity(cart, "TEE", 1)).toEqual({ MUG: 2, TEE: 1 });
    expect(setQuantity(cart, "TEE", 0)).toEqual({ MUG: 2 });
    expect(removeFromCart(cart, "MUG")).toEqual({ TEE: 3 });
  });

  it("is kept across a reload, and a damaged copy starts an empty cart", () => {
    saveCart({ MUG: 2 });
    expect(loadCart()).toEqual({ MUG: 2 });
    localStorage.setItem("shop.cart", "{not json");
    expect(loadCart()).toEqual({});
    localStorage.setItem("shop.cart", JSON.stringify({ MUG: -1, TEE: 2.5, CAP: 1 }));
    expect(loadCart()).toEqual({ CAP: 1 });
  });

  it("marks sold-out, short and withdrawn lines, and prices only what can be bought", () => {
    const lines = cartLines({ MUG: 3, TEE: 1, CAP: 1, OLD: 2 }, [product("CAP", 4), product("MUG", 1), product("TEE", 0)]);
    const bySku = Object.fromEntries(lines.map((line) => [line.sku, line.problem]));
    expect(bySku).toEqual({
      CAP: null,
      MUG: { kind: "short", available: 1 },
      TEE: { kind: "sold_out" },
      OLD: { kind: "unavailable" },
    });
    expect(pricedLines(lines).map((line) => line.sku)).toEqual(["CAP", "MUG"]);
  });

  it("counts the units it prices, never a sold-out or withdrawn line", () => {
    const lines = cartLines({ MUG: 2, TEE: 1, OLD: 4 }, [product("MUG", 5), product("TEE", 0)]);
    expect(unitCount(lines)).toBe(2);
    expect(pricedLines(lines).map((line) => line.sku)).toEqual(["MUG"]);
  });

  it("is paid in the currency of its first line, and a line in another is marked and left out of the totals", () => {
    const catalog = [product("EUR-MUG", 5, "10.00", "EUR"), product("MUG", 5, "15.00", "USD")];
    const cart = { MUG: 1, "EUR-MUG": 1 };
    expect(cartCurrency(cart, catalog)).toBe("USD");
    expect(cartCurrency({}, catalog)).toBeNull();
    const lines = cartLines(cart, catalog);
    expect(lines.find((line) => line.sku === "EUR-MUG")?.problem).toEqual({
      kind: "other_currency",
      currency: "EUR",
      cartCurrency: "USD",
    });
    expect(pricedLines(lines).map((line) => line.sku)).toEqual(["MUG"]);
    expect(unitCount(lines)).toBe(1);
  });
});

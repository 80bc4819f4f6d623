import { describe, expect, it } from "vitest";
import { formatMoney, formatRate, taxCents, toCents, totalsOf } from "./money";

describe("cart arithmetic, as the API computes it", () => {
  it("reads decimal prices as exact cents", () => {
    expect(toCents("12.50")).toBe(1250);
    expect(toCents("12.5")).toBe(1250);
    expect(toCents("19.99")).toBe(1999);
    expect(toCents("7")).toBe(700);
    expect(toCents("0.10") * 3).toBe(30); // no 0.30000000000000004
  });

  it("rounds tax half up to the cent", () => {
    expect(taxCents(4499, "0.2000")).toBe(900); // 899.8
    expect(taxCents(1250, "0.0825")).toBe(103); // 103.125
    expect(taxCents(2, "0.25")).toBe(1); // 0.5 rounds up
    expect(taxCents(1999, "0")).toBe(0);
  });

  it("sums line totals, adds the tax and formats the money", () => {
    const totals = totalsOf(
      [
        { unitPrice: "12.50", quantity: 2 },
        { unitPrice: "19.99", quantity: 1 },
      ],
      "0.2000",
    );
    expect(totals).toEqual({ subtotal: 4499, tax: 900, total: 5399 });
    expect(formatMoney(totals.total, "USD")).toBe("$53.99");
    expect(formatRate("0.2000")).toBe("20%");
    expect(formatRate("0.0825")).toBe("8.25%");
  });
});

// Money in integer minor units (cents), computed the way the API does: line totals summed,
// tax = subtotal x rate rounded half up to the cent, total = subtotal + tax.

/** "12.50" -> 1250. Prices come from the API as decimal strings with at most two places. */
export function toCents(amount: string): number {
  const match = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(amount.trim());
  if (!match) throw new Error(`not an amount: ${amount}`);
  const [, sign, units, fraction = ""] = match;
  const cents = Number(units) * 100 + Number(fraction.padEnd(2, "0"));
  return sign ? -cents : cents;
}

/** Tax on a subtotal at a decimal rate ("0.2000"), rounded half up to the cent like the API. */
export function taxCents(subtotalCents: number, rate: string): number {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(rate.trim());
  if (!match) throw new Error(`not a rate: ${rate}`);
  const [, whole, fraction = ""] = match;
  const scale = 10n ** BigInt(fraction.length);
  const numerator = BigInt(whole + fraction);
  const exact = BigInt(subtotalCents) * numerator; // tax in cents, times `scale`
  return Number((exact * 2n + scale) / (2n * scale)); // half up, for amounts >= 0
}

export interface Totals {
  subtotal: number;
  tax: number;
  total: number;
}

export function totalsOf(lines: { unitPrice: string; quantity: number }[], taxRate: string): Totals {
  const subtotal = lines.reduce((sum, line) => sum + toCents(line.unitPrice) * line.quantity, 0);
  const tax = taxCents(subtotal, taxRate);
  return { subtotal, tax, total: subtotal + tax };
}

export function formatMoney(cents: number, currency: string): string {
  return new Intl.NumberFormat("en", { style: "currency", currency }).format(cents / 100);
}

/** "0.2000" -> "20%", "0.0825" -> "8.25%". */
export function formatRate(rate: string): string {
  return `${Number((Number(rate) * 100).toFixed(4))}%`;
}

/** A moment from the API ("2026-12-06T13:45:00Z") in the shopper's words and time zone: "Dec 6, 2026, 1:45 PM". */
export function formatMoment(iso: string): string {
  return new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

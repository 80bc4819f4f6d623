import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { CartLine } from "../cart";
import type { ShopConfig } from "../types";
import { Checkout } from "./Checkout";

const config: ShopConfig = {
  shop_name: "Demo Shop",
  stripe_publishable_key: "",
  test_mode: true,
  test_payment_methods: [
    { id: "pm_card_visa", label: "Visa: payment succeeds" },
    { id: "pm_card_chargeDeclined", label: "Card declined" },
  ],
  tax_rate: "0.2000",
};
const lines: CartLine[] = [
  { sku: "MUG", name: "Ceramic mug", unitPrice: "12.50", currency: "USD", quantity: 2, available: 5, problem: null },
];

function renderCheckout(onPlaced = vi.fn()) {
  render(<Checkout config={config} configError={null} lines={lines} currency="USD" onLineProblems={vi.fn()} onPlaced={onPlaced} />);
  return onPlaced;
}

describe("the checkout form", () => {
  it("retries a placement lost to the network with the same idempotency key, then starts a new one", async () => {
    const keys: string[] = [];
    const fetch = vi.fn(async (_url: string, init: RequestInit) => {
      keys.push((init.headers as Record<string, string>)["Idempotency-Key"]);
      if (keys.length === 1) throw new TypeError("Failed to fetch");
      return new Response(JSON.stringify({ reference: `ord_${keys.length}` }), { status: 202 });
    });
    vi.stubGlobal("fetch", fetch);
    const onPlaced = renderCheckout();
    const user = userEvent.setup();

    await user.type(screen.getByLabelText("Email for your receipt"), "shopper@example.com");
    await user.click(screen.getByRole("button", { name: "Place order and pay $30.00" }));
    expect(await screen.findByText(/couldn't reach the shop/)).toBeTruthy();
    expect(screen.getByRole("button", { name: /Place order/ }).hasAttribute("disabled")).toBe(false);

    await user.click(screen.getByRole("button", { name: /Place order/ }));
    await vi.waitFor(() => expect(onPlaced).toHaveBeenCalledWith("ord_2"));
    await user.click(screen.getByRole("button", { name: /Place order/ }));
    await vi.waitFor(() => expect(keys).toHaveLength(3));

    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(JSON.parse(fetch.mock.calls[0][1].body as string)).toEqual({
      email: "shopper@example.com",
      lines: [{ sku: "MUG", quantity: 2 }],
      payment_method: "pm_card_visa",
    });
  });

  it("shows the API's refusal in plain words beside the field and moves focus to it", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ email: ["Enter a valid email address."] }), { status: 400 })),
    );
    renderCheckout();
    const user = userEvent.setup();

    await user.type(screen.getByLabelText("Email for your receipt"), "not-an-email");
    await user.click(screen.getByRole("radio", { name: "Card declined" }));
    await user.click(screen.getByRole("button", { name: /Place order/ }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/Enter a valid email address, such as name@example.com/);
    expect(alert.textContent).not.toMatch(/email:/);
    expect(document.activeElement).toBe(alert);
    expect(screen.getByLabelText("Email for your receipt").getAttribute("aria-invalid")).toBe("true");
  });
});

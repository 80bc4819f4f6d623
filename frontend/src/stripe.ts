// Stripe.js, loaded from js.stripe.com (the only way Stripe allows) only when the shop has a
// publishable key. `pure` loads nothing until asked.
import type { Stripe } from "@stripe/stripe-js";
import { loadStripe } from "@stripe/stripe-js/pure";

let loading: Promise<Stripe | null> | null = null;

export function stripeFor(publishableKey: string): Promise<Stripe | null> {
  loading ??= loadStripe(publishableKey).catch(() => {
    loading = null; // let a later attempt try again
    return null;
  });
  return loading;
}

export const STRIPE_UNAVAILABLE = "The card form could not be loaded. Check your connection and reload the page.";
export const AUTHENTICATION_FAILED =
  "Your bank could not confirm this payment, so no money was taken. You can place the order again with this or another card.";

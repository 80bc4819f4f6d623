// A stand-in for Stripe.js, served by the shop page tests through Playwright's route
// interception in place of https://js.stripe.com (unreachable here). It offers the part the
// shop page uses, with Stripe's shapes: Stripe(key).elements().create("card") mounting a
// card field, createPaymentMethod() turning Stripe's test card numbers into their test
// PaymentMethod ids, and handleNextAction() showing a 3-D Secure challenge like Stripe's
// test page, whose answer goes to the fake Stripe server (tests/fake_stripe.py) through
// https://api.stripe.com/standin/authenticate (where Stripe.js's own calls go, so the page's
// connect-src applies to it as to them), routed by the test.
(function () {
  "use strict";
  // Stripe's test card numbers and the test PaymentMethods they stand for.
  var CARDS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000002760003184": "pm_card_threeDSecure2Required",
    "4000002500003155": "pm_card_authenticationRequired",
  };

  function CardElement() {
    this.input = null;
    this.handlers = [];
  }
  CardElement.prototype.mount = function (target) {
    var container = typeof target === "string" ? document.querySelector(target) : target;
    var input = document.createElement("input");
    input.setAttribute("aria-label", "Card number");
    input.setAttribute("inputmode", "numeric");
    input.setAttribute("autocomplete", "cc-number");
    input.setAttribute("placeholder", "1234 1234 1234 1234");
    input.className = "standin-card-number";
    var self = this;
    input.addEventListener("input", function () {
      self.handlers.forEach(function (handler) {
        handler({ elementType: "card", empty: !input.value, complete: !!CARDS[input.value.replace(/\s/g, "")] });
      });
    });
    container.appendChild(input);
    this.input = input;
  };
  CardElement.prototype.on = function (event, handler) {
    if (event === "change") this.handlers.push(handler);
  };
  CardElement.prototype.destroy = function () {
    if (this.input) this.input.remove();
  };
  CardElement.prototype.focus = function () {
    if (this.input) this.input.focus();
  };

  function challenge(clientSecret) {
    // Stripe's 3-D Secure test page, in a frame from hooks.stripe.com as Stripe shows it (so
    // the page's frame-src decides whether it may appear): complete or fail the authentication.
    return new Promise(function (resolve) {
      var dialog = document.createElement("dialog");
      dialog.setAttribute("aria-label", "3D Secure test payment page");
      var frame = document.createElement("iframe");
      frame.title = "3D Secure test payment page";
      frame.src = "https://hooks.stripe.com/standin/3d_secure_2_test";
      frame.style.border = "0";
      frame.style.width = "min(360px, calc(100vw - 72px))";
      frame.style.height = "180px";
      window.addEventListener("message", function answered(event) {
        if (event.origin !== "https://hooks.stripe.com" || event.source !== frame.contentWindow) return;
        window.removeEventListener("message", answered);
        dialog.close();
        dialog.remove();
        resolve(event.data.succeed === true);
      });
      dialog.appendChild(frame);
      document.body.appendChild(dialog);
      dialog.showModal();
      frame.focus();
    }).then(function (succeed) {
      // A simple request (text/plain): no CORS preflight for the route to answer.
      return fetch("https://api.stripe.com/standin/authenticate", {
        method: "POST",
        body: JSON.stringify({ client_secret: clientSecret, succeed: succeed }),
      }).then(function (response) {
        return response.json();
      });
    });
  }

  window.Stripe = function (publishableKey) {
    if (!/^pk_test_/.test(publishableKey)) throw new Error("The stand-in takes test keys only.");
    return {
      elements: function () {
        return {
          create: function (type) {
            if (type !== "card") throw new Error("The stand-in has a card element only.");
            return new CardElement();
          },
        };
      },
      createPaymentMethod: function (params) {
        var number = params.card && params.card.input ? params.card.input.value.replace(/\s/g, "") : "";
        var id = CARDS[number];
        if (!id) {
          return Promise.resolve({
            error: { type: "validation_error", code: "incorrect_number", message: "Your card number is invalid." },
          });
        }
        return Promise.resolve({ paymentMethod: { id: id, object: "payment_method", type: "card" } });
      },
      handleNextAction: function (params) {
        return challenge(params.clientSecret).then(function (intent) {
          if (intent.error) return { error: intent.error };
          if (intent.last_payment_error) return { error: intent.last_payment_error, paymentIntent: intent };
          return { paymentIntent: intent };
        });
      },
      _registerWrapper: function () {},
    };
  };
  window.Stripe.version = "endive";
})();

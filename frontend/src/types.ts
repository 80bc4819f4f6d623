// The shop API's shapes, as the page reads them: named from the types generated out of the
// API's OpenAPI schema (api-schema.ts, `make frontend-types`), so a field renamed in the API
// breaks `tsc` here rather than the shopper's page.
import type { components } from "./api-schema";

type Schemas = components["schemas"];

export type Product = Schemas["ProductOutput"];
export type PaymentMethodOption = Schemas["PaymentMethodOptionOutput"];
export type ShopConfig = Schemas["ShopConfigOutput"];
export type OrderStateName = Schemas["OrderState"];
export type OrderLine = Schemas["OrderLineOutput"];
export type OrderEvent = Schemas["OrderEventOutput"];
export type PaymentAction = Schemas["PaymentActionOutput"];
export type Refund = Schemas["RefundOutput"];
export type Order = Schemas["OrderOutput"];
export type PlaceOrderBody = Schemas["PlaceOrderInput"];

// DRF's field errors: a list of messages, or nested per field / per line position.
export type FieldErrors = string[] | { [field: string]: FieldErrors };

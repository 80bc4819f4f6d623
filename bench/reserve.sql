-- pgbench: the database work of one order's stock reservation, as the order path does it:
-- lock the product's stock row, reserve a unit under the stock CHECK constraints, and
-- write the order with its line. Product ids come from -D pmin=.. -D pmax=.. (one id for
-- the hot-row ceiling).
\set product random(:pmin, :pmax)
BEGIN;
SELECT on_hand, reserved FROM inventory_stock WHERE product_id = :product FOR UPDATE;
UPDATE inventory_stock SET reserved = reserved + 1 WHERE product_id = :product AND on_hand - reserved >= 1;
INSERT INTO orders_order (reference, email, state, currency, subtotal, tax_rate, tax, total, payment_method,
                          idempotency_key, request_hash, failure_code, failure_reason, needs_attention,
                          redrive_count, created_at, updated_at)
VALUES ('pgb_' || md5(random()::text || clock_timestamp()::text), 'pgbench@example.com', 'VALIDATED', 'USD',
        10.00, 0, 0, 10.00, 'pm_card_visa', NULL, '', '', '', false, 0, now(), now())
RETURNING id AS order_id \gset
INSERT INTO orders_orderline (order_id, product_id, sku, name, quantity, unit_price, line_total)
VALUES (:order_id, :product, 'PGBENCH', 'pgbench', 1, 10.00, 10.00);
END;

import { useCallback, useEffect, useState } from "react";
import { getShopConfig } from "../api";
import { useRetrying } from "../hooks";
import { OrderPage } from "./OrderPage";
import { ShopPage } from "./ShopPage";

const ORDER_PATH = /^\/orders\/([^/]+)\/?$/;

/** The shop at /, one order at /orders/<reference>: Django serves this page at both. */
export default function App() {
  const [path, setPath] = useState(() => window.location.pathname);
  const config = useRetrying(getShopConfig);

  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const navigate = useCallback((to: string) => {
    window.history.pushState(null, "", to);
    setPath(to);
    window.scrollTo(0, 0);
  }, []);

  const match = ORDER_PATH.exec(path);
  const shopName = config.value?.shop_name ?? "Shop";

  useEffect(() => {
    document.title = match ? `Your order · ${shopName}` : shopName;
  }, [match, shopName]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <a
          className="brand"
          href="/"
          onClick={(event) => {
            event.preventDefault();
            navigate("/");
          }}
        >
          {shopName}
        </a>
        {config.value?.test_mode && (
          <p className="test-banner">
            <strong>Test mode</strong>: no real money moves.
          </p>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {match ? (
          <OrderPage key={match[1]} reference={decodeURIComponent(match[1])} config={config.value} navigate={navigate} />
        ) : (
          <ShopPage config={config.value} configError={config.error} navigate={navigate} />
        )}
      </main>
    </>
  );
}

import { useEffect, useState } from "react";
import { retryDelay } from "./polling";

export type Loaded<T> = { value: T | null; error: unknown; reload: () => void };

/** A value fetched once, fetched again with backoff after each failure until it arrives. */
export function useRetrying<T>(fetcher: () => Promise<T>, key = 0): Loaded<T> {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    const attempt = () => {
      fetcher().then(
        (result) => {
          if (stopped) return;
          setValue(result);
          setError(null);
        },
        (failure: unknown) => {
          if (stopped) return;
          failures += 1;
          setError(failure);
          timer = setTimeout(attempt, retryDelay(failures));
        },
      );
    };
    attempt();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the fetcher is a module function; `key` and `round` refetch
  }, [key, round]);
  return { value, error, reload: () => setRound((n) => n + 1) };
}

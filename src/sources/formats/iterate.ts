// Light async iterables for the per-row path between a format reader and the pipeline runner. An
// async generator costs several promise ticks per row and layer; these cost one `then` per row,
// which at hundreds of thousands of rows a second is most of what the layers in between spend.

/** Each value of `source` through `map`; `close` runs once when the iteration ends in any way. */
export function mapRows<T, U>(
  source: AsyncIterable<T>,
  map: (value: T) => U,
  close: () => void,
): AsyncIterable<U> {
  return {
    [Symbol.asyncIterator]() {
      const inner = source[Symbol.asyncIterator]();
      let closed = false;
      const finish = () => {
        if (!closed) {
          closed = true;
          close();
        }
      };
      return {
        next: () =>
          inner.next().then(
            (result): IteratorResult<U> => {
              if (result.done) {
                finish();
                return { value: undefined, done: true };
              }
              return { value: map(result.value), done: false };
            },
            (error: unknown) => {
              finish();
              throw error;
            },
          ),
        async return() {
          try {
            await inner.return?.();
          } finally {
            finish();
          }
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** Iterates what `open` resolves to, opened on the first `next()`; undefined means no values. */
export function deferRows<T>(open: () => Promise<AsyncIterable<T> | undefined>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      let inner: AsyncIterator<T> | undefined;
      let opened: Promise<AsyncIterator<T> | undefined> | undefined;
      const start = () =>
        (opened ??= open().then((iterable) => (inner = iterable?.[Symbol.asyncIterator]())));
      const done = (): IteratorResult<T> => ({ value: undefined, done: true });
      return {
        next: () => (inner ? inner.next() : start().then((it) => (it ? it.next() : done()))),
        async return() {
          await (inner ?? (opened ? await opened.catch(() => undefined) : undefined))?.return?.();
          return done();
        },
      };
    },
  };
}

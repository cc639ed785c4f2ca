// Pagination styles of HTTP sources: the parameters each page sends and when the last page is reached.
import { badInput } from "../../errors.js";
import { safeUrl, type HttpResponse } from "./http.client.js";
import type { HttpPagination } from "./http.config.js";

export interface PageState {
  url: URL;
  cursor?: string | number;
  page: number;
  offset: number;
}

export function firstPage(pagination: HttpPagination, url: URL): PageState {
  return { url, page: pagination.type === "page" ? pagination.start : 0, offset: 0 };
}

export function pageParams(pagination: HttpPagination, state: PageState): Record<string, string | number> {
  switch (pagination.type) {
    case "none":
    case "nextLink":
      return {};
    case "cursor":
      return state.cursor === undefined ? {} : { [pagination.param]: state.cursor };
    case "page":
      return {
        [pagination.param]: state.page,
        ...(pagination.sizeParam && pagination.size ? { [pagination.sizeParam]: pagination.size } : {}),
      };
    case "offset":
      return { [pagination.param]: state.offset, [pagination.limitParam]: pagination.limit };
  }
}

/** The next page's state, or undefined after the last page. An empty page is always the last. */
export function nextPage(
  pagination: HttpPagination,
  state: PageState,
  response: HttpResponse,
  count: number,
): PageState | undefined {
  if (count === 0) return undefined;
  switch (pagination.type) {
    case "none":
      return undefined;
    case "cursor": {
      const cursor = valueAt(response.body, pagination.responsePath);
      if ((typeof cursor !== "string" && typeof cursor !== "number") || cursor === "") return undefined;
      if (cursor === state.cursor) {
        throw badInput(`${safeUrl(state.url)} returned the same cursor twice; pagination would never end`);
      }
      return { ...state, cursor };
    }
    case "nextLink": {
      const link = pagination.responsePath
        ? valueAt(response.body, pagination.responsePath)
        : linkHeaderNext(response.headers.get("link"));
      if (typeof link !== "string" || link === "") return undefined;
      const url = new URL(link, response.url);
      // Credentials are sent with every page, so they must not follow a link to another host.
      if (url.origin !== state.url.origin) {
        throw badInput(`${safeUrl(state.url)} linked its next page to another origin (${url.origin})`);
      }
      return { ...state, url };
    }
    case "page":
      return pagination.size !== undefined && count < pagination.size
        ? undefined
        : { ...state, page: state.page + 1 };
    case "offset":
      return count < pagination.limit ? undefined : { ...state, offset: state.offset + count };
  }
}

/** The `rel="next"` target of an RFC 8288 Link header. */
export function linkHeaderNext(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const match of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(match[2] ?? "")?.[1];
    if (rel?.toLowerCase().split(/\s+/).includes("next")) return match[1];
  }
  return undefined;
}

/** Follows a dot path through objects (and arrays, by index). */
export function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

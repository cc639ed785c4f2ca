// GraphQL over HTTP as browsers, urql, Apollo Client and curl speak it: which requests are safe
// from cross-site forgery, which media type a response is sent as, which HTTP status a response
// with errors gets, and which GET responses caches may keep. Pure functions of the request; the
// server and the Apollo plugin in graphql/http-caching-plugin.ts apply them. The README's
// "GraphQL over HTTP" section documents every rule here.
import { Kind, type DocumentNode, type OperationDefinitionNode, type SelectionSetNode } from "graphql";
import { ErrorCode, HTTP_STATUS, REQUEST_ERROR_CODES } from "../errors.js";

export const GRAPHQL_RESPONSE = "application/graphql-response+json";
const JSON_TYPE = "application/json";

type Headers = Record<string, string | string[] | undefined>;

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** Content types a browser may send cross-site without a CORS preflight. */
const SIMPLE_CONTENT_TYPES = new Set([
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "text/plain",
]);

/**
 * Headers a cross-site page cannot add without a CORS preflight, which only allowed origins pass.
 * Apollo's two CSRF headers are here, so are our credentials: a key or token is never sent by a
 * browser on its own (Datahus sets no cookies), only by code that was allowed to send it.
 */
export const PREFLIGHT_HEADERS = [
  "x-apollo-operation-name",
  "apollo-require-preflight",
  "x-api-key",
  "authorization",
];

/** Media types in an Accept header, without parameters, lower-cased. */
function acceptedTypes(accept: string | undefined): string[] {
  if (!accept) return [];
  return accept.split(",").map((part) => part.split(";")[0]!.trim().toLowerCase());
}

/**
 * Why a request must be refused as a possible cross-site request forgery, or null when it is safe.
 *
 * A forged request comes from a form, an image, a link or a `no-cors` fetch: a simple content type
 * (or none), no custom headers. POSTs must therefore carry a JSON content type or a preflight
 * header, as Apollo's own csrfPrevention requires. A GET (queries only; Apollo refuses mutations
 * over GET) is also accepted when it asks for a GraphQL or JSON response, which forms, images and
 * navigations never do: such a request carries no credentials (none are ambient) and reads only
 * what anyone may read anonymously, so nothing is spent or changed on a victim's behalf.
 */
export function csrfRefusal(method: string, headers: Headers): string | null {
  const contentType = first(headers["content-type"])?.split(";")[0]?.trim().toLowerCase();
  if (contentType && !SIMPLE_CONTENT_TYPES.has(contentType)) return null;
  if (PREFLIGHT_HEADERS.some((name) => (first(headers[name]) ?? "").length > 0)) return null;
  if (method === "GET") {
    const accepted = acceptedTypes(first(headers.accept));
    if (accepted.includes(GRAPHQL_RESPONSE) || accepted.includes(JSON_TYPE)) return null;
  }
  return (
    "This request has been blocked as a potential cross-site request forgery. Send " +
    `"Accept: ${GRAPHQL_RESPONSE}" (or application/json) with a GET, a JSON content type with a POST, ` +
    `or one of these headers: ${PREFLIGHT_HEADERS.join(", ")}`
  );
}

/**
 * The media type of a GraphQL response, negotiated as Apollo Server does: the GraphQL one when the
 * client accepts it, JSON otherwise (and when no Accept header is sent at all).
 */
export function responseMediaType(accept: string | undefined): string {
  const accepted = acceptedTypes(accept);
  return accepted.includes(GRAPHQL_RESPONSE)
    ? `${GRAPHQL_RESPONSE}; charset=utf-8`
    : `${JSON_TYPE}; charset=utf-8`;
}

/**
 * One HTTP status per error code (errors.ts HTTP_STATUS), whether the error was raised before
 * execution (a wrong key, a rate limit) or by a resolver (a missing key):
 * - any UNAUTHENTICATED error makes the response 401, so a missing key and a wrong key look alike;
 * - otherwise, when no data came back, the first error's code decides;
 * - a response with data is 200: the errors are about some fields only.
 */
export function statusForErrors(codes: readonly string[], hasData: boolean): number | undefined {
  if (codes.length === 0) return undefined;
  if (codes.includes(ErrorCode.UNAUTHENTICATED)) return HTTP_STATUS.UNAUTHENTICATED;
  if (hasData) return 200;
  const code = codes[0]!;
  if (code in HTTP_STATUS) return HTTP_STATUS[code as ErrorCode];
  return REQUEST_ERROR_CODES.has(code) ? 400 : undefined;
}

/** Root fields of the catalogue: public descriptions of datasets, free to read. */
const CATALOGUE_FIELDS = new Set(["datasets", "dataset", "categories", "__typename"]);
/** Fields under a dataset that read (and charge for) records, or depend on the balance. */
const METERED_FIELDS = new Set(["records", "record", "aggregate", "quote"]);

/**
 * Whether a query only reads the catalogue, so that its response may be cached: every root field
 * is a catalogue field and nothing under it reads records. Fragments are followed.
 */
export function readsCatalogueOnly(document: DocumentNode, operation: OperationDefinitionNode): boolean {
  if (operation.operation !== "query") return false;
  const fragments = new Map<string, SelectionSetNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition.selectionSet);
  }
  const seen = new Set<string>();
  const clean = (set: SelectionSetNode, root: boolean): boolean =>
    set.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (root ? !CATALOGUE_FIELDS.has(name) : METERED_FIELDS.has(name)) return false;
        return !selection.selectionSet || clean(selection.selectionSet, false);
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) return clean(selection.selectionSet, root);
      const name = selection.name.value;
      if (seen.has(`${name}:${root}`)) return true;
      seen.add(`${name}:${root}`);
      const fragment = fragments.get(name);
      return fragment !== undefined && clean(fragment, root);
    });
  return clean(operation.selectionSet, true);
}

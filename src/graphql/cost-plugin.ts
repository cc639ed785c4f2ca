// Every authenticated GraphQL response says what it cost: `extensions.cost` (records returned,
// credits charged, balance left) and the X-Credits-Remaining header.
import type { ApolloServerPlugin } from "@apollo/server";
import { isAuthenticated } from "../identity/caller.js";
import type { Context } from "./context.js";

export function costPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          const { caller, meter, services } = contextValue;
          if (!isAuthenticated(caller) || response.body.kind !== "single") return;
          let balance = meter.balance;
          try {
            balance ??= Number(await services.credits.balance(caller.accountId));
          } catch (err) {
            // PostgreSQL went away after the operation: the answer stands, without its cost line
            // (a throw here would turn it into Apollo's own 500).
            contextValue.log.warn({ err }, "could not read the balance for extensions.cost");
            return;
          }
          const cost = { records: meter.records, credits: meter.credits, balance };
          response.body.singleResult.extensions = { ...response.body.singleResult.extensions, cost };
          response.http.headers.set("x-credits-remaining", String(balance));
        },
      };
    },
  };
}

# syntax=docker/dockerfile:1
# Build: compile TypeScript and generate the Prisma client, then keep production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run generate && npm run build && npm prune --omit=dev

# Run: one image for every role; the command picks it (serve | worker | migrate).
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/demo ./demo
USER node
EXPOSE 4000
# --expose-gc: an idle process gives back the memory a burst grew (src/observability/idle-collection.ts).
ENTRYPOINT ["node", "--enable-source-maps", "--expose-gc", "dist/src/main.js"]
CMD ["serve"]

// Writes the demo datasets in demo/ (NDJSON, one record a line). Synthetic but plausible values from
// a seeded generator, so the files are the same on every run and every machine; the seed test
// checks that the committed files are what this produces. Regenerate after changing it:
//
//   npm run build && node dist/src/demo/generate.js
//
// Self-contained (node: imports only), so it also runs straight from source: node src/demo/generate.ts
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type DemoRow = Record<string, string | number | boolean | null>;

/** mulberry32: a small seeded PRNG; the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (random: Random, low: number, high: number) => low + random() * (high - low);
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
/** Cents (an integer) as decimal text: exact, unlike formatting a float. */
const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
const day = (date: Date) => date.toISOString().slice(0, 10);

// ─── housing_prices_ny_2024 ──────────────────────────────────────────────────

interface Neighborhood {
  name: string;
  zip: string;
  lat: number;
  lon: number;
}

interface Borough {
  name: string;
  /** Share of the city's sales. */
  weight: number;
  /** Typical price per square foot, in dollars. */
  pricePerSqft: number;
  types: readonly string[];
  neighborhoods: readonly Neighborhood[];
}

const BOROUGHS: readonly Borough[] = [
  {
    name: "Manhattan",
    weight: 0.3,
    pricePerSqft: 1250,
    types: ["Condo", "Condo", "Co-op", "Co-op", "Co-op", "Townhouse"],
    neighborhoods: [
      { name: "Upper West Side", zip: "10024", lat: 40.787, lon: -73.975 },
      { name: "Upper East Side", zip: "10021", lat: 40.773, lon: -73.957 },
      { name: "Harlem", zip: "10027", lat: 40.811, lon: -73.946 },
      { name: "Chelsea", zip: "10011", lat: 40.746, lon: -74.001 },
      { name: "Tribeca", zip: "10013", lat: 40.716, lon: -74.009 },
      { name: "East Village", zip: "10009", lat: 40.727, lon: -73.984 },
      { name: "Financial District", zip: "10004", lat: 40.707, lon: -74.011 },
      { name: "Washington Heights", zip: "10033", lat: 40.842, lon: -73.939 },
    ],
  },
  {
    name: "Brooklyn",
    weight: 0.28,
    pricePerSqft: 760,
    types: ["Condo", "Co-op", "Single family", "Two family", "Townhouse"],
    neighborhoods: [
      { name: "Park Slope", zip: "11215", lat: 40.671, lon: -73.981 },
      { name: "Williamsburg", zip: "11211", lat: 40.714, lon: -73.961 },
      { name: "Bushwick", zip: "11237", lat: 40.694, lon: -73.921 },
      { name: "Bay Ridge", zip: "11209", lat: 40.626, lon: -74.03 },
      { name: "Bedford-Stuyvesant", zip: "11216", lat: 40.687, lon: -73.941 },
      { name: "Flatbush", zip: "11226", lat: 40.641, lon: -73.959 },
    ],
  },
  {
    name: "Queens",
    weight: 0.24,
    pricePerSqft: 560,
    types: ["Condo", "Co-op", "Co-op", "Single family", "Two family"],
    neighborhoods: [
      { name: "Astoria", zip: "11102", lat: 40.764, lon: -73.923 },
      { name: "Flushing", zip: "11354", lat: 40.767, lon: -73.833 },
      { name: "Forest Hills", zip: "11375", lat: 40.719, lon: -73.844 },
      { name: "Jamaica", zip: "11432", lat: 40.702, lon: -73.788 },
      { name: "Long Island City", zip: "11101", lat: 40.744, lon: -73.949 },
      { name: "Bayside", zip: "11361", lat: 40.768, lon: -73.777 },
    ],
  },
  {
    name: "Bronx",
    weight: 0.1,
    pricePerSqft: 340,
    types: ["Co-op", "Co-op", "Condo", "Single family", "Two family"],
    neighborhoods: [
      { name: "Riverdale", zip: "10471", lat: 40.89, lon: -73.912 },
      { name: "Fordham", zip: "10458", lat: 40.861, lon: -73.89 },
      { name: "Pelham Bay", zip: "10461", lat: 40.851, lon: -73.828 },
      { name: "Mott Haven", zip: "10454", lat: 40.809, lon: -73.923 },
    ],
  },
  {
    name: "Staten Island",
    weight: 0.08,
    pricePerSqft: 420,
    types: ["Single family", "Single family", "Two family", "Condo", "Townhouse"],
    neighborhoods: [
      { name: "St. George", zip: "10301", lat: 40.644, lon: -74.077 },
      { name: "Tottenville", zip: "10307", lat: 40.512, lon: -74.245 },
      { name: "Great Kills", zip: "10308", lat: 40.554, lon: -74.151 },
    ],
  },
];

function weightedBorough(random: Random): Borough {
  let r = random();
  for (const borough of BOROUGHS) {
    r -= borough.weight;
    if (r < 0) return borough;
  }
  return BOROUGHS[BOROUGHS.length - 1]!;
}

/** 300 closed residential sales in New York City in 2024, ids in date order. */
export function housingPricesNy2024(count = 300): DemoRow[] {
  const random = seededRandom(2024);
  const start = Date.UTC(2024, 0, 2);
  const sales = Array.from({ length: count }, () => {
    const borough = weightedBorough(random);
    const place = pick(random, borough.neighborhoods);
    const type = pick(random, borough.types);
    const house = type === "Single family" || type === "Two family" || type === "Townhouse";
    const bedrooms = house ? 2 + Math.floor(random() * 4) : Math.floor(random() * 4);
    const bathrooms = Math.max(1, Math.min(bedrooms, 1 + Math.floor(random() * bedrooms * 2) / 2));
    const sqft = Math.round(
      (house ? 700 + bedrooms * 300 : 480 + bedrooms * 330) *
        between(random, 0.85, 1.2) *
        (type === "Two family" ? 1.4 : 1),
    );
    const price = Math.round((sqft * borough.pricePerSqft * between(random, 0.78, 1.3)) / 1000) * 1000;
    let date = new Date(start + Math.floor(random() * 362) * 86_400_000);
    // Deeds are recorded on weekdays.
    while (date.getUTCDay() === 0 || date.getUTCDay() === 6) date = new Date(date.getTime() + 86_400_000);
    return {
      sale_date: day(date),
      borough: borough.name,
      neighborhood: place.name,
      zip_code: place.zip,
      property_type: type,
      bedrooms,
      bathrooms: bathrooms.toFixed(1),
      // Co-op listings often leave out the floor area.
      square_feet: type === "Co-op" && random() < 0.4 ? null : sqft,
      year_built:
        random() < 0.06 ? null : house ? 1900 + Math.floor(random() * 90) : 1920 + Math.floor(random() * 104),
      sale_price: money(price * 100),
      latitude: round(place.lat + between(random, -0.008, 0.008), 6),
      longitude: round(place.lon + between(random, -0.008, 0.008), 6),
    };
  });
  sales.sort((a, b) => a.sale_date.localeCompare(b.sale_date));
  return sales.map((sale, i) => ({ sale_id: `NY24-${String(i + 1).padStart(5, "0")}`, ...sale }));
}

// ─── retail_sales_daily ──────────────────────────────────────────────────────

const PRODUCTS = [
  { sku: "SKU-1001", product: "Organic whole milk, 1 gal", category: "dairy", cents: 549, units: 42 },
  { sku: "SKU-1002", product: "Greek yogurt, 32 oz", category: "dairy", cents: 629, units: 18 },
  { sku: "SKU-2001", product: "Sourdough loaf", category: "bakery", cents: 699, units: 25 },
  { sku: "SKU-2002", product: "Everything bagels, 6-pack", category: "bakery", cents: 549, units: 30 },
  { sku: "SKU-3001", product: "Cold brew coffee, 32 oz", category: "beverages", cents: 799, units: 16 },
  { sku: "SKU-3002", product: "Sparkling water, 12-pack", category: "beverages", cents: 649, units: 22 },
  { sku: "SKU-4001", product: "Bananas, per lb", category: "produce", cents: 69, units: 120 },
  { sku: "SKU-4002", product: "Hass avocados, 4-pack", category: "produce", cents: 599, units: 20 },
  { sku: "SKU-5001", product: "Paper towels, 6 rolls", category: "household", cents: 1199, units: 9 },
  { sku: "SKU-5002", product: "Dish soap, 24 oz", category: "household", cents: 399, units: 11 },
] as const;

const STORES = [
  { id: "BKN-01", city: "Brooklyn", size: 1.0 },
  { id: "QNS-02", city: "Queens", size: 0.75 },
] as const;

/** Daily sales of 10 products in 2 stores over 25 days of March 2024: 500 rows. */
export function retailSalesDaily(days = 25): DemoRow[] {
  const random = seededRandom(314);
  const rows: DemoRow[] = [];
  for (let d = 0; d < days; d++) {
    const date = new Date(Date.UTC(2024, 2, 1 + d));
    const weekend = date.getUTCDay() === 0 || date.getUTCDay() === 6;
    for (const store of STORES) {
      for (const p of PRODUCTS) {
        // Each product is on promotion one week in four, 20% off.
        const promo = Math.floor((d + p.sku.charCodeAt(7)) / 7) % 4 === 0;
        const cents = promo ? Math.round(p.cents * 0.8) : p.cents;
        const units = Math.max(
          0,
          Math.round(
            p.units * store.size * (weekend ? 1.35 : 1) * (promo ? 1.5 : 1) * between(random, 0.7, 1.3),
          ),
        );
        rows.push({
          date: day(date),
          store_id: store.id,
          store_city: store.city,
          sku: p.sku,
          product: p.product,
          category: p.category,
          units_sold: units,
          unit_price: money(cents),
          amount: money(units * cents),
          on_promotion: promo,
        });
      }
    }
  }
  return rows;
}

// ─── weather_hourly ──────────────────────────────────────────────────────────

const STATIONS = [
  { id: "KNYC", name: "New York Central Park", offset: 0, wind: 1.0 },
  { id: "KJFK", name: "New York JFK Airport", offset: 0.6, wind: 1.45 },
  { id: "KLGA", name: "New York LaGuardia Airport", offset: 0.3, wind: 1.3 },
] as const;

/** Magnus formula: relative humidity from temperature and dew point (°C). */
function relativeHumidity(t: number, dewPoint: number): number {
  const magnus = (x: number) => Math.exp((17.625 * x) / (243.04 + x));
  return Math.min(100, Math.round((100 * magnus(dewPoint)) / magnus(t)));
}

/** Hourly observations at 3 New York stations over 100 hours of January 2024: 300 rows. */
export function weatherHourly(hours = 100): DemoRow[] {
  const random = seededRandom(1015);
  const start = Date.UTC(2024, 0, 15);
  const rows: DemoRow[] = [];
  for (const station of STATIONS) {
    for (let h = 0; h < hours; h++) {
      const at = new Date(start + h * 3_600_000);
      const localHour = (at.getUTCHours() + 19) % 24; // UTC-5
      // A front passes around hour 40 to 54: milder, wetter, lower pressure.
      const front = Math.exp(-(((h - 47) / 8) ** 2));
      const t =
        -2.5 +
        4.5 * Math.sin((2 * Math.PI * (localHour - 9)) / 24) +
        3 * Math.sin((2 * Math.PI * h) / 96) +
        4 * front +
        station.offset +
        between(random, -0.6, 0.6);
      const spread = front > 0.4 ? between(random, 0.3, 1.5) : between(random, 3, 9);
      const dewPoint = t - spread;
      const precipitation = front > 0.35 && random() < 0.8 ? round(between(random, 0.2, 3.5) * front, 1) : 0;
      const conditions =
        precipitation > 0
          ? t <= 0.5
            ? "Snow"
            : "Rain"
          : pick(
              random,
              front > 0.2 ? ["Overcast", "Cloudy"] : ["Clear", "Clear", "Partly cloudy", "Cloudy"],
            );
      rows.push({
        station: station.id,
        station_name: station.name,
        observed_at: at.toISOString().replace(".000Z", "Z"),
        temperature_c: round(t, 1),
        dew_point_c: round(dewPoint, 1),
        relative_humidity: relativeHumidity(t, dewPoint),
        wind_speed_kmh: round((8 + 14 * front + between(random, 0, 10)) * station.wind, 1),
        wind_direction_deg: Math.round(((front > 0.3 ? 160 : 290) + between(random, -40, 40) + 360) % 360),
        pressure_hpa: round(
          1021 - 16 * front + 2 * Math.sin((2 * Math.PI * h) / 60) + between(random, -0.4, 0.4),
          1,
        ),
        precipitation_mm: precipitation,
        conditions,
      });
    }
  }
  return rows;
}

// ─── files ───────────────────────────────────────────────────────────────────

/** The demo files by name, as generated. */
export const DEMO_FILES: Record<string, () => DemoRow[]> = {
  "housing_prices_ny_2024.ndjson": housingPricesNy2024,
  "retail_sales_daily.ndjson": retailSalesDaily,
  "weather_hourly.ndjson": weatherHourly,
};

export const toNdjson = (rows: readonly DemoRow[]) => rows.map((row) => `${JSON.stringify(row)}\n`).join("");

/** The project root: the nearest folder above this file with a package.json. */
function projectRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error("No package.json above this file");
  }
}

async function main(): Promise<void> {
  const dir = join(projectRoot(), "demo");
  await mkdir(dir, { recursive: true });
  for (const [name, generate] of Object.entries(DEMO_FILES)) {
    const rows = generate();
    await writeFile(join(dir, name), toNdjson(rows));
    process.stdout.write(`${join("demo", name)}: ${rows.length} rows\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

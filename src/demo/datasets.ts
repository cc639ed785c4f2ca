// The demo catalogue: one dataset per file in demo/, one of each access mode, so that a new user
// meets free, metered and purchased reads on the first try.
import type { DatasetInput } from "../catalog/catalog.service.js";

export interface DemoDataset {
  /** The NDJSON file in demo/ holding its records. */
  file: string;
  input: DatasetInput;
}

export const DEMO_DATASETS: readonly DemoDataset[] = [
  {
    file: "weather_hourly.ndjson",
    input: {
      slug: "weather_hourly",
      title: "Hourly weather observations, New York stations",
      description:
        "Temperature, dew point, humidity, wind, pressure, precipitation and conditions every hour at Central Park, JFK and LaGuardia over four days of January 2024. Synthetic demo data.",
      category: "weather",
      tags: ["weather", "new york", "hourly", "demo"],
      columns: [
        { name: "station", type: "STRING", nullable: false, description: "ICAO station id" },
        { name: "station_name", type: "STRING", nullable: false },
        { name: "observed_at", type: "DATETIME", nullable: false, description: "UTC" },
        { name: "temperature_c", type: "FLOAT64", nullable: false },
        { name: "dew_point_c", type: "FLOAT64", nullable: false },
        { name: "relative_humidity", type: "INT32", nullable: false, description: "percent" },
        { name: "wind_speed_kmh", type: "FLOAT64", nullable: false },
        { name: "wind_direction_deg", type: "INT32", nullable: false },
        { name: "pressure_hpa", type: "FLOAT64", nullable: false },
        { name: "precipitation_mm", type: "FLOAT64", nullable: false, description: "in the past hour" },
        { name: "conditions", type: "STRING", nullable: false },
      ],
      keyColumns: ["station", "observed_at"],
      access: "OPEN",
    },
  },
  {
    file: "retail_sales_daily.ndjson",
    input: {
      slug: "retail_sales_daily",
      title: "Daily grocery sales by store and product",
      description:
        "Units and revenue per product per day in two New York grocery stores, March 2024, with promotions. Synthetic demo data.",
      category: "retail",
      tags: ["retail", "sales", "daily", "demo"],
      columns: [
        { name: "date", type: "DATE", nullable: false },
        { name: "store_id", type: "STRING", nullable: false },
        { name: "store_city", type: "STRING", nullable: false },
        { name: "sku", type: "STRING", nullable: false },
        { name: "product", type: "STRING", nullable: false },
        { name: "category", type: "STRING", nullable: false },
        { name: "units_sold", type: "INT32", nullable: false },
        { name: "unit_price", type: "DECIMAL", precision: 8, scale: 2, nullable: false, description: "USD" },
        { name: "amount", type: "DECIMAL", precision: 12, scale: 2, nullable: false, description: "USD" },
        { name: "on_promotion", type: "BOOLEAN", nullable: false },
      ],
      keyColumns: ["date", "store_id", "sku"],
      access: "METERED",
      pricePer100Records: 1,
    },
  },
  {
    file: "housing_prices_ny_2024.ndjson",
    input: {
      slug: "housing_prices_ny_2024",
      title: "New York City residential sales, 2024",
      description:
        "Closed residential sales in the five boroughs in 2024: date, place, property type, size, year built and price. Synthetic demo data.",
      category: "real-estate",
      tags: ["housing", "prices", "new york", "demo"],
      columns: [
        { name: "sale_id", type: "STRING", nullable: false },
        { name: "sale_date", type: "DATE", nullable: false },
        { name: "borough", type: "STRING", nullable: false },
        { name: "neighborhood", type: "STRING", nullable: false },
        { name: "zip_code", type: "STRING", nullable: false },
        { name: "property_type", type: "STRING", nullable: false },
        { name: "bedrooms", type: "INT32", nullable: false },
        { name: "bathrooms", type: "DECIMAL", precision: 3, scale: 1, nullable: false },
        { name: "square_feet", type: "INT32", nullable: true },
        { name: "year_built", type: "INT32", nullable: true },
        { name: "sale_price", type: "DECIMAL", precision: 12, scale: 2, nullable: false, description: "USD" },
        { name: "latitude", type: "FLOAT64", nullable: false },
        { name: "longitude", type: "FLOAT64", nullable: false },
      ],
      keyColumns: ["sale_id"],
      access: "PURCHASED",
      purchasePrice: 50,
      purchaseTerm: "ONE_TIME",
    },
  },
];

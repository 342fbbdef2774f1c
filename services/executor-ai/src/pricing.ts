import { readFileSync } from "node:fs";
import { DEFAULT_PRICES, PriceTable } from "@vp/contracts";

/**
 * The price table lives in @vp/contracts (DEFAULT_PRICES, createPricing, estimateAiCost) so budgets and the
 * editor estimate with the same numbers. An operator replaces sections of it with a JSON file.
 */
export { createPricing, DEFAULT_PRICES, estimateAiCost, spokenSeconds, type Pricing } from "@vp/contracts";

/** DEFAULT_PRICES with the top-level sections of `file` (JSON) replacing theirs, validated. */
export function loadPriceTable(file?: string): PriceTable {
  if (!file) return DEFAULT_PRICES;
  const raw = JSON.parse(readFileSync(file, "utf8")) as Partial<PriceTable>;
  return PriceTable.parse({ ...DEFAULT_PRICES, ...raw });
}

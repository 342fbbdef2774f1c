import { config } from "zod";

// Before any schema is built: zod would otherwise probe `new Function` (its JIT), which the editor's CSP
// refuses ('unsafe-eval' is not allowed) and reports as a policy violation.
config({ jitless: true });

// Imported first by devchain/index.ts: chopsticks fixes its log level when its modules load, so set it before they do.
// Quiet (warn) unless FEDTUNE_CHOPSTICKS_LOG_LEVEL or chopsticks' own LOG_LEVEL says otherwise.
process.env.LOG_LEVEL ??= process.env.FEDTUNE_CHOPSTICKS_LOG_LEVEL ?? 'warn';

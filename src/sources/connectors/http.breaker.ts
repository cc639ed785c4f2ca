// A circuit breaker per HTTP source, so a failing API fails fast instead of holding workers in
// retries. A pure state machine: callers pass the time, so tests drive it with a fake clock.
import { AppError, ErrorCode } from "../../errors.js";

export interface BreakerOptions {
  /** Consecutive failed requests that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one trial request is let through. */
  coolDownMs: number;
}

type State =
  | { kind: "closed"; failures: number }
  | { kind: "open"; until: number }
  | { kind: "halfOpen"; trialInFlight: boolean };

export type BreakerState = State["kind"];

export class CircuitBreaker {
  private current: State = { kind: "closed", failures: 0 };

  constructor(private readonly options: BreakerOptions) {}

  state(now: number): BreakerState {
    return this.current.kind === "open" && now >= this.current.until ? "halfOpen" : this.current.kind;
  }

  /**
   * Asks to send a request. Throws SERVICE_UNAVAILABLE while the circuit is open, and while the
   * half-open trial request is still in flight.
   */
  acquire(now: number): void {
    const state = this.current;
    if (state.kind === "closed") return;
    if (state.kind === "open") {
      if (now < state.until) throw this.openError(state.until - now);
      this.current = { kind: "halfOpen", trialInFlight: true };
      return;
    }
    if (state.trialInFlight) throw this.openError(0);
    state.trialInFlight = true;
  }

  recordSuccess(): void {
    this.current = { kind: "closed", failures: 0 };
  }

  recordFailure(now: number): void {
    const state = this.current;
    const failures = state.kind === "closed" ? state.failures + 1 : this.options.failureThreshold;
    this.current =
      failures >= this.options.failureThreshold
        ? { kind: "open", until: now + this.options.coolDownMs }
        : { kind: "closed", failures };
  }

  /** The request ended without a verdict on the API (the caller cancelled): free the trial slot. */
  abandon(): void {
    if (this.current.kind === "halfOpen") this.current.trialInFlight = false;
  }

  private openError(remainingMs: number): AppError {
    return new AppError(
      ErrorCode.SERVICE_UNAVAILABLE,
      "The source's API is failing; not calling it for now",
      {
        retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)),
      },
    );
  }
}

/** One breaker per key (source id, or the URL without its query), shared by every sync in the process. */
export class CircuitBreakerRegistry {
  private readonly breakers = new Map<string, CircuitBreaker>();

  get(key: string, options: BreakerOptions): CircuitBreaker {
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(options);
      this.breakers.set(key, breaker);
    }
    return breaker;
  }
}

export const defaultBreakers = new CircuitBreakerRegistry();

/**
 * The broker's log: the few calls the shell and its runtimes make (pino's signature), so the
 * broker, its lifecycle and the controller runtime share one type without importing each other.
 */

/** The few log calls the broker makes (pino's signature). */
export interface BrokerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A log that drops everything (the default when none is given). */
export const silentLog: BrokerLog = { info() {}, warn() {}, error() {} };

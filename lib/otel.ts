/** `oniocache/otel`: OpenTelemetry spans and metrics for every cache command, on `@opentelemetry/api`. */
export { OtelPlugin, type OtelPluginOptions } from './plugins/otel.js'

/** `oniocache/prometheus`: Prometheus metrics for every cache command, on `prom-client`. */
export { PrometheusPlugin, type PrometheusPluginOptions } from './plugins/prometheus.js'

// Package bench holds the micro benchmarks and the end-to-end packet harness; product code never imports it.
package bench

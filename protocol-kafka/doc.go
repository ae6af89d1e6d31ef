// Package kafka will serve the Kafka wire protocol on franz-go's kmsg.
// Not implemented yet.
package kafka

"""The relay transport: hub-to-hub messages through an MQTT 5 broker, outbound connections only."""

"""The production line's side of the station: MQTT publishing, the OPC UA server, the headless service."""

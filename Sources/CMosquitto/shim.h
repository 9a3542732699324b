#ifndef C_MOSQUITTO_SHIM_H
#define C_MOSQUITTO_SHIM_H
// mosquitto.h does not include the MQTT 5 property and reason-code constants;
// they live in mqtt_protocol.h, so the module exposes both.
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif

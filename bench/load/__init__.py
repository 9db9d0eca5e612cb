"""The one load generator: `client` (raw HTTP/1.1, standard library), `closed_loop` (over
processes; numpy and Pillow too, for the GPU check), `open_loop` (on a schedule, the soak),
`wrk` (peak throughput). This file imports nothing, so each user imports only its part."""

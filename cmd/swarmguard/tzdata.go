package main

// The image is FROM scratch: embed the time-zone database so CRON_TZ=Europe/Berlin works there too.
import _ "time/tzdata"

"""Start, stop and inspect the real services tenin's tests need, without Docker.

    scripts/services up       install what is missing, start (or reuse) PostgreSQL,
                              Redis and Apache Kafka (KRaft, single node), then print
                              `export NAME=value` lines -- and nothing else -- on stdout
    scripts/services down     stop what `up` started (found through pid files)
    scripts/services status   say what is running
    scripts/services browser  install Debian's chromium when missing (the console's
                              browser tests, tests/browser/), print its path

Everything except the export lines goes to stderr so `eval "$(scripts/services up)"`
works. Only the Python standard library is used: this runs before any virtualenv.

Where things live (all outside the git work tree, so a fresh clone reuses them):
    $TENIN_SERVICES_HOME (default ~/.cache/tenin/services)   data dirs, pid files, logs
    ~/.cache/tenin/kafka-libs/<version>-<pom hash>/          the broker's jars
    ~/.cache/tenin/m2/                                       Maven's local repository

Ports (all on 127.0.0.1, chosen to never collide with a system instance) can be moved
with TENIN_POSTGRES_PORT, TENIN_REDIS_PORT, TENIN_KAFKA_PORT, TENIN_KAFKA_CONTROLLER_PORT.

Modules:
    cli               the three commands and main(argv)
    config            paths, ports and timeouts, read once from the environment
    process           logging, run(), pid files and /proc lookups, the state lock
    probes            wire-protocol checks that the right server answers on a port
    install           apt-get, and finding java and the PostgreSQL binaries
    service           the Service protocol; PidfileServer (shared by Redis and Kafka)
    postgres          Postgres: external reuse, where the cluster lives, start/stop
    postgres_cluster  Cluster: initdb, settings, pg_ctl and provisioning of one cluster
    redis_server      Redis
    kafka_broker      Kafka: the KRaft broker's configuration, start and readiness
    kafka_jars        the broker's jars, resolved by Maven from scripts/tenin_services/kafka-pom.xml
"""

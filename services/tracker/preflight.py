"""One connection to Kafka before a command starts its clients, so that a wrong password,
CA file or address stops it with one line naming the setting to fix.

aiokafka's clients report a failed bootstrap only as "Unable to bootstrap from ..." (the
cause goes to a log line per broker), and Faust retries forever; a single connection made
here with the same options raises the real cause.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from services.tracker.connection import client_options
from services.tracker.errors import TrackerError
from services.tracker.settings import Settings


async def _first_reachable(settings: Settings, timeout: float) -> None:
    options = client_options(settings)
    # One connection: no cluster to bootstrap from, no metadata to refresh.
    options.pop("bootstrap_servers")
    options.pop("metadata_max_age_ms")
    refused: list[str] = []
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **options),
                timeout)
        except (OSError, KafkaConnectionError, TimeoutError) as error:
            cause = error.__cause__ if isinstance(error.__cause__, ssl.SSLError) else error
            if isinstance(cause, ssl.SSLError):
                raise cause from None
            refused.append(server)  # try the next bootstrap server
            continue
        conn.close()
        return
    raise TrackerError(f"cannot reach Kafka at {', '.join(refused)}; check "
                       "TRACKER_KAFKA_BOOTSTRAP and TRACKER_SECURITY_PROTOCOL")


def check_connection(settings: Settings, timeout: float = 15.0) -> None:
    """Connect (TLS handshake and SASL authentication included) to the first bootstrap
    server that answers; raise TrackerError naming the setting at fault."""
    protocol = settings.security_protocol
    try:
        asyncio.run(_first_reachable(settings, timeout))
    except ssl.SSLCertVerificationError as error:
        raise TrackerError(
            f"TLS: the certificate of Kafka at {settings.kafka_bootstrap} is not trusted "
            f"({error.verify_message}); check TRACKER_SSL_CAFILE") from None
    except ssl.SSLError as error:
        raise TrackerError(f"TLS handshake with Kafka at {settings.kafka_bootstrap} failed "
                           f"({error.reason}); check TRACKER_SECURITY_PROTOCOL={protocol} "
                           "and TRACKER_SSL_CAFILE") from None
    except SaslAuthenticationFailed:
        raise TrackerError(
            f"Kafka at {settings.kafka_bootstrap} refused the credentials of user "
            f"{settings.sasl_username!r} ({settings.sasl_mechanism}); check "
            "TRACKER_SASL_USERNAME and TRACKER_SASL_PASSWORD") from None
    except (UnsupportedSaslMechanismError, IllegalSaslStateError):
        raise TrackerError(
            f"Kafka at {settings.kafka_bootstrap} does not accept SASL mechanism "
            f"{settings.sasl_mechanism}; check TRACKER_SASL_MECHANISM and "
            f"TRACKER_SECURITY_PROTOCOL={protocol}") from None

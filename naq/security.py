"""Signing jobs (HMAC) and encrypting results (AES-GCM).

With ``NAQ_SIGNING_KEY`` set, every job message carries an HMAC-SHA256 of its
bytes in the ``Naq-Signature`` header, and workers refuse (dead-letter,
before decoding anything) a job whose signature is missing or wrong. With
``NAQ_RESULT_ENCRYPTION_KEY`` set, the value, error and traceback of a result
are stored sealed with AES-GCM; status and timings stay readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache
from typing import Any

from naq import tracing
from naq.broker import MSG_ID_HEADER
from naq.errors import ConfigurationError, SecurityError
from naq.settings import Settings

SIGNATURE_HEADER = "Naq-Signature"
#: AES-GCM nonce length in bytes.
NONCE_SIZE = 12


def signature(key: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of ``payload`` under ``key``."""
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def job_headers(settings: Settings, message_id: str | None, payload: bytes) -> dict[str, str]:
    """Headers of a job message: its message id (for the stream's deduplication) if it has
    one, its signature when signing is on, and the active trace context when tracing is
    on (:mod:`naq.tracing`)."""
    headers = {MSG_ID_HEADER: message_id} if message_id else {}
    if settings.signing_key:
        headers[SIGNATURE_HEADER] = signature(settings.signing_key, payload)
    if tracing.tracer is not None:
        tracing.inject(headers)
    return headers


def check_signature(settings: Settings, payload: bytes, headers: dict[str, str] | None) -> None:
    """Refuse a job message that is unsigned or forged, when signing is on.

    Raises:
        SecurityError: saying which.
    """
    if not settings.signing_key:
        return
    given = (headers or {}).get(SIGNATURE_HEADER)
    if not given:
        raise SecurityError(
            "unsigned job refused: NAQ_SIGNING_KEY is set and the job has no signature"
        )
    if not hmac.compare_digest(given, signature(settings.signing_key, payload)):
        raise SecurityError("forged job refused: its signature does not match")


@lru_cache(maxsize=8)
def _aes_key(secret: str) -> bytes:
    # A urlsafe-base64 32-byte key is used as is; any other text is hashed to 32 bytes.
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(secret.encode()).digest()


def _aead(secret: str) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency
        raise ConfigurationError("result encryption needs the 'cryptography' package") from exc
    return AESGCM(_aes_key(secret))


def seal(settings: Settings, plaintext: bytes, job_id: str) -> bytes:
    """Encrypt ``plaintext`` bound to ``job_id`` (nonce + ciphertext)."""
    assert settings.result_encryption_key
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _aead(settings.result_encryption_key).encrypt(nonce, plaintext, job_id.encode())


def unseal(settings: Settings, sealed: bytes, job_id: str) -> bytes:
    """Decrypt what :func:`seal` made.

    Raises:
        SecurityError: no key, the wrong key, or tampered data.
    """
    if not settings.result_encryption_key:
        raise SecurityError(
            f"the result of job {job_id} is encrypted: set NAQ_RESULT_ENCRYPTION_KEY to read it"
        )
    try:
        return bytes(
            _aead(settings.result_encryption_key).decrypt(
                sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], job_id.encode()
            )
        )
    except Exception:
        raise SecurityError(
            f"the result of job {job_id} can't be decrypted with this NAQ_RESULT_ENCRYPTION_KEY"
        ) from None

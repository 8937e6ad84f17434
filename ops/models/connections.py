from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .. import secrets
from ..fabric import transport


class ServerConnection(models.Model):
    """A VMM, SCOM or ConfigMgr server Slipway talks to over WinRM."""

    class Kind(models.TextChoices):
        VMM = "vmm", "VMM server"
        SCOM = "scom", "SCOM management server"
        CONFIGMGR = "configmgr", "ConfigMgr site server"

    class Auth(models.TextChoices):
        BASIC = "basic", "Basic"
        NTLM = "ntlm", "NTLM"
        KERBEROS = "kerberos", "Kerberos"
        NEGOTIATE = "negotiate", "Negotiate"
        CREDSSP = "credssp", "CredSSP"

    name = models.SlugField(max_length=64, unique=True, help_text="Short name used in logs and errors, e.g. vmm01: letters, digits, hyphens and underscores, no spaces.",
        error_messages={"invalid": "A connection name may hold only letters, digits, hyphens and underscores (no spaces "
                                   "or dots), e.g. vmm01 or scom-lab."})
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.VMM)
    host = models.CharField(max_length=255, help_text="DNS name or address of the server.")
    port = models.PositiveIntegerField(default=5985, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    use_https = models.BooleanField(default=False, verbose_name="HTTPS")
    auth = models.CharField(max_length=16, choices=Auth.choices, default=Auth.NEGOTIATE)
    cert_validation = models.BooleanField(default=True, verbose_name="Validate the server certificate")
    ca_bundle = models.TextField(
        blank=True, verbose_name="CA bundle",
        help_text="HTTPS: the CA that signed the server's certificate, as the path of a PEM file on the worker's "
                  "host or the PEM pasted here. Empty: the system's trusted CAs.",
    )
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(blank=True, editable=False)
    max_concurrent_jobs = models.PositiveIntegerField(
        default=8, validators=[MinValueValidator(1), MaxValueValidator(256)],
        help_text="At most this many VMM jobs that Slipway starts run at once on this server.",
    )
    operation_timeout = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(600)],
        help_text="Seconds before a call to this server is given up.",
    )
    job_timeout = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text="Seconds a VMM job may run before its step fails (the job may still finish in VMM).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why its last use failed; empty when it succeeded.")
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name}"

    @classmethod
    def record_use(cls, pk, error: str = "") -> None:
        """What the last use of the connection (a test, a sync) found: the dashboard lists the failing ones."""
        now = timezone.now()
        if error:
            cls.objects.filter(pk=pk).update(last_error=error, last_error_at=now)
        else:
            cls.objects.filter(pk=pk).update(last_ok_at=now, last_error="", last_error_at=None)

    def set_password(self, raw: str) -> None:
        self.password_encrypted = secrets.encrypt(raw)

    def get_password(self) -> str:
        return secrets.decrypt(self.password_encrypted)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def transport_label(self) -> str:
        """'NTLM, messages encrypted', 'Basic over HTTPS, certificate checked against its CA bundle', ..."""
        return transport.configured(self.auth, self.use_https, self.cert_validation, self.ca_bundle)

    @property
    def encrypted(self) -> bool:
        return self.use_https or transport.encryption(self.auth, self.use_https) != "never"

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.use_https else "http"
        return f"{scheme}://{self.host}:{self.port}/wsman"

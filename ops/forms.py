import ipaddress
import re

from django import forms

from .fabric import transport
from .models import ServerConnection

# a DNS name (labels of letters, digits and hyphens, dot-separated) or an IPv4/IPv6 address
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConnectionForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False,
        help_text="Stored encrypted and never shown again. Leave empty to keep the current password.",
    )

    class Meta:
        model = ServerConnection
        fields = ["name", "kind", "host", "port", "use_https", "auth", "cert_validation", "ca_bundle", "username",
                  "password", "max_concurrent_jobs", "operation_timeout", "job_timeout", "enabled"]
        widgets = {"ca_bundle": forms.Textarea(attrs={"rows": 4, "spellcheck": "false",
                                                      "placeholder": "/etc/slipway/contoso-ca.pem  or  -----BEGIN CERTIFICATE-----"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:  # nothing to keep yet
            self.fields["password"].help_text = "Stored encrypted and never shown again."
        self.fields["auth"].help_text = (
            "NTLM, Kerberos or Negotiate over HTTP (port 5985): Slipway encrypts every message with the session key. "
            "Basic only over HTTPS (port 5986). CredSSP only where a cmdlet must reach a second server.")
        # the browser's own limits and the first message match the model's bounds (a positive
        # integer field would otherwise say ">= 0", then refuse 0)
        self.fields["name"].error_messages["invalid"] = ServerConnection._meta.get_field("name").error_messages["invalid"]
        for name in ("port", "max_concurrent_jobs", "operation_timeout", "job_timeout"):
            field = self.fields[name]
            for v in ServerConnection._meta.get_field(name).validators:
                limit = getattr(v, "limit_value", None)
                if v.code == "min_value":
                    field.min_value, field.widget.attrs["min"] = limit, limit
                elif v.code == "max_value":
                    field.max_value, field.widget.attrs["max"] = limit, limit
            field.validators = [v for v in field.validators if v.code not in ("min_value", "max_value")] + \
                ServerConnection._meta.get_field(name).validators

    def clean_host(self):
        host = self.cleaned_data["host"].strip()
        if not _valid_host(host):
            raise forms.ValidationError(
                f"“{host}” is not a host name or IP address. Give only the server's name, e.g. vmm01.contoso.com "
                "or 10.0.0.5: no scheme (http://), path, port or spaces; the port and HTTPS have their own fields.")
        return host

    def clean_ca_bundle(self):
        bundle = self.cleaned_data.get("ca_bundle", "").strip()
        problem = transport.check_ca_bundle(bundle)
        if problem:
            raise forms.ValidationError(problem)
        return bundle

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("password"):
            self.add_error("password", "A new connection needs a password.")
        host = data.get("host")
        if data.get("auth") == ServerConnection.Auth.BASIC and not data.get("use_https") and host \
                and not _loopback(host):
            # the password and every message would cross the network in clear; a WinRM listener
            # refuses it anyway unless AllowUnencrypted is true (README, "Pointing Slipway at a real VMM server")
            self.add_error("auth", "Basic over plain HTTP sends the password and every message unencrypted, and a "
                                   "WinRM listener refuses it by default. Choose NTLM (Slipway encrypts each "
                                   "message with the session key) on port 5985, or tick HTTPS (port 5986).")
        return data


MAX_ID = 2**63 - 1   # BigAutoField: a larger number is no ID (and overflows SQLite)


class VMFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Name contains")
    status = forms.CharField(required=False)
    cluster = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    host = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    cloud = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    batch = forms.CharField(required=False, max_length=255)
    property = forms.RegexField(r"^(Custom([1-9]|10)|[A-Za-z][A-Za-z0-9_ .-]{0,63})$", required=False,
                                error_messages={"invalid": "Custom1..Custom10 or a custom property name"})

from django import forms

from .models import ServerConnection


class ConnectionForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False,
        help_text="Stored encrypted and never shown again. Leave empty to keep the current password.",
    )

    class Meta:
        model = ServerConnection
        fields = ["name", "kind", "host", "port", "use_https", "auth", "cert_validation", "username", "password",
                  "max_concurrent_jobs", "operation_timeout", "enabled"]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("password"):
            self.add_error("password", "A new connection needs a password.")
        if data.get("auth") == ServerConnection.Auth.BASIC and not data.get("use_https"):
            # Basic over HTTP is what the simulator speaks; allowed, but say what it means.
            self.basic_over_http = True
        return data


class VMFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Name contains")
    status = forms.CharField(required=False)
    cluster = forms.IntegerField(required=False, min_value=1)
    host = forms.IntegerField(required=False, min_value=1)
    cloud = forms.IntegerField(required=False, min_value=1)

# POLLER_URL of both functions is computed (main.tf: the poller cannot reference itself); this
# file proves it equals the URI the poller reports, where Cloud Functions reports the
# deterministic run.app URL. Its own file: an override applies when a resource is created, and
# here the poller is created with the URI Google would report.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

mock_provider "archive" {}

mock_provider "time" {}

variables {
  project_id      = "acme-importer-test"
  region          = "europe-west1"
  leanplum_app_id = "app_test"
}

run "poller_url_equals_the_uri_the_poller_reports" {
  override_resource {
    target = google_cloudfunctions2_function.poller
    values = {
      service_config = { uri = "https://lp-importer-poller-123456789012.europe-west1.run.app" }
    }
  }
  # Nothing from Cloud Run's URL list: the check block passes on the reported URI alone.
  override_data {
    target = data.google_cloud_run_v2_service.poller
    values = {
      urls = []
    }
  }
  assert {
    condition = alltrue([
      for f in [google_cloudfunctions2_function.ingest, google_cloudfunctions2_function.poller] :
      f.service_config[0].environment_variables["POLLER_URL"] == google_cloudfunctions2_function.poller.service_config[0].uri
    ])
    error_message = "POLLER_URL of both functions equals the poller's service_config[0].uri."
  }
}

run "poller_url_check_fails_when_the_poller_is_served_elsewhere" {
  # The poller is replaced (another region) and reports a hash-based URL only: the check
  # block fails (a warning in a real apply), rather than letting tasks call a URL nobody serves.
  variables {
    region = "europe-west4"
  }
  override_resource {
    target = google_cloudfunctions2_function.poller
    values = {
      service_config = { uri = "https://lp-importer-poller-abcdefghij-ez.a.run.app" }
    }
  }
  override_data {
    target = data.google_cloud_run_v2_service.poller
    values = {
      urls = ["https://lp-importer-poller-abcdefghij-ez.a.run.app"]
    }
  }
  expect_failures = [check.poller_url]
}

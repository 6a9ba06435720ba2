# ---------------------------------------------------------------------------------------------
# The Leanplum development key. Terraform creates the secret only: its value is added as a
# version outside Terraform (infra/README.md), so it is never in code, variables or state.
# ---------------------------------------------------------------------------------------------

resource "google_secret_manager_secret" "leanplum_dev_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-leanplum-dev-key"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

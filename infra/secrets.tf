# ---------------------------------------------------------------------------------------------
# The Leanplum development key. Terraform creates the secret only: its value is added as a
# version outside Terraform (infra/README.md), so it is never in code, variables or state.
# ---------------------------------------------------------------------------------------------

resource "google_secret_manager_secret" "leanplum_dev_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-leanplum-dev-key"
  labels    = local.labels

  # Automatic replication by default; user-managed replicas in secret_replica_locations where
  # an organisation policy restricts resource locations (it refuses automatic replication).
  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }

    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

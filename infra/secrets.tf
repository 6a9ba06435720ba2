# ---------------------------------------------------------------------------------------------
# The default app's Leanplum development key (LEANPLUM_DEV_KEY). Terraform creates the secret
# only: its value is added as a version outside Terraform (infra/README.md), so it is never in
# code, variables or state.
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

# ---------------------------------------------------------------------------------------------
# One secret per app of leanplum_apps (functions/leanplum_apps.py): the app's development key,
# read by both functions as LEANPLUM_DEV_KEY_<NAME in upper case> (the ingest function starts
# jobs; the poller starts queued files and polls). Like the default key: the secret only, its
# value is added as a version outside Terraform, same replication.
# ---------------------------------------------------------------------------------------------

locals {
  # LEANPLUM_APP_ROUTES (prefix=app,..., dry-run prefixes as prefix=dry-run) and
  # LEANPLUM_APP_IDS (app=id,...), or "none": the code's syntax, built from leanplum_apps.
  leanplum_app_routes = concat(
    flatten([for app, spec in var.leanplum_apps : [for prefix in spec.prefixes : "${prefix}=${app}"]]),
    [for prefix in var.dry_run_prefixes : "${prefix}=dry-run"],
  )
  leanplum_app_routes_setting = length(local.leanplum_app_routes) == 0 ? "none" : join(",", local.leanplum_app_routes)
  leanplum_app_ids_setting    = length(var.leanplum_apps) == 0 ? "none" : join(",", [for app, spec in var.leanplum_apps : "${app}=${spec.app_id}"])
  # Every routed prefix, to app or dry run: each must be under incoming_prefix, and routed once
  # (preconditions of the ingest function, functions.tf).
  routed_prefixes = concat(flatten([for spec in values(var.leanplum_apps) : spec.prefixes]), var.dry_run_prefixes)
}

resource "google_secret_manager_secret" "leanplum_app_dev_key" {
  for_each = var.leanplum_apps

  project   = var.project_id
  secret_id = "${var.name_prefix}-leanplum-dev-key-${each.key}"
  labels    = merge(local.labels, { leanplum-app = each.key })

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

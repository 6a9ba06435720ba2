terraform {
  # >= 1.7: `mock_provider` in infra/tests/*.tftest.hcl.
  required_version = ">= 1.7"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    # time_sleep: waits for IAM grants and the Eventarc service agent on a first apply (waits.tf).
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }
}

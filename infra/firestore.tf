# Firestore carries the realtime projection the apps listen to; it can be rebuilt from PostgreSQL, but deleting it
# by accident would still cut every live session off, hence the protections.
resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.api]
}

# The same firestore.rules the emulator loads in every local run and test.
resource "google_firebaserules_ruleset" "firestore" {
  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/../firestore.rules")
    }
  }

  depends_on = [google_firebase_project.this, google_firestore_database.default]
}

# Rulesets are immutable: a change to firestore.rules creates a new one and replaces this release to point at it.
resource "google_firebaserules_release" "firestore" {
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"
}

# firestore.indexes.json (the `firebase deploy` format) is the single list of indexes; each composite index and
# each field override becomes a resource here, so `firebase deploy --only firestore:indexes` is never needed.
locals {
  firestore_indexes = jsondecode(file("${path.module}/../firestore.indexes.json"))

  composite_indexes = {
    for index in local.firestore_indexes.indexes :
    join("|", concat(
      [index.collectionGroup, try(index.queryScope, "COLLECTION")],
      [for field in index.fields : "${field.fieldPath}:${try(field.order, field.arrayConfig)}"],
    )) => index
  }

  field_overrides = {
    for override in try(local.firestore_indexes.fieldOverrides, []) :
    "${override.collectionGroup}|${override.fieldPath}" => override
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  database    = google_firestore_database.default.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

resource "google_firestore_field" "override" {
  for_each = local.field_overrides

  database   = google_firestore_database.default.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  # An override without "indexes" keeps the inherited single-field indexes; an empty list turns them off.
  dynamic "index_config" {
    for_each = can(each.value.indexes) ? [each.value.indexes] : []
    content {
      dynamic "indexes" {
        for_each = index_config.value
        content {
          query_scope  = try(indexes.value.queryScope, "COLLECTION")
          order        = try(indexes.value.order, null)
          array_config = try(indexes.value.arrayConfig, null)
        }
      }
    }
  }

  dynamic "ttl_config" {
    for_each = try(each.value.ttl, false) ? [true] : []
    content {}
  }
}

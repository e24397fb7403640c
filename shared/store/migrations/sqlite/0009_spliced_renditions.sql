-- An edXML recipient's rendition of an edXML package is the package with this bus's TraceHeaders
-- put in and its Signature taken out (lienthong_edxml::splice): its bytes are not stored again.
-- `base_sha256` names the package's blob, `edits` the edits as JSON ([{"at":..,"cut":..,"put":".."}]);
-- `sha256` and `size` stay those of the rendition. Both are NULL for a rendition stored whole.
ALTER TABLE renditions ADD COLUMN base_sha256 TEXT;
ALTER TABLE renditions ADD COLUMN edits TEXT;

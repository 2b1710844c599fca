package feature

// The events the features of one user actor announce to each other (User.Announce, Listener). Some data exists
// in two forms that clients of different ages use, each owned by another feature: bookmarks in XEP-0049 private
// XML and in PEP (XEP-0411, XEP-0402 §5.3), the avatar in the vCard and in PEP (XEP-0398). The owner of one form
// announces what changed; the feature that converts asks the owner of the other form to change it. Each event
// carries By, the Feature.Name of the feature whose request caused the change ("" for the user's own client), so
// that a converter does not convert its own writes back.
//
// Events are values: what they carry is serialised XML, never a part's own state.

// PrivateChanged: an XEP-0049 private XML element was stored (Element is the whole element).
type PrivateChanged struct {
	Space, Local string
	Element      string
	By           string
}

// StorePrivate asks private XML storage to store Element (one element, not in a jabber:* namespace) as if the
// user had; it answers with PrivateChanged.
type StorePrivate struct {
	Element string
	By      string
}

// ReadPrivate asks private XML storage for the element Space/Local; it answers with PrivateRead.
type ReadPrivate struct {
	Space, Local string
	By           string
}

// PrivateRead answers ReadPrivate: Element is the stored element, "" when there is none. By is who asked.
type PrivateRead struct {
	Space, Local string
	Element      string
	By           string
}

// VCardChanged: the user's vcard-temp vCard was replaced (VCard is the whole <vCard/> element).
type VCardChanged struct {
	VCard string
	By    string
}

// SetVCardPhoto asks the vCard's owner to replace the PHOTO of the user's vCard with an embedded image of MIME
// type Type and base64 data BinVal, or to remove it (BinVal ""), keeping everything else; it answers with
// VCardChanged.
type SetVCardPhoto struct {
	Type, BinVal string
	By           string
}

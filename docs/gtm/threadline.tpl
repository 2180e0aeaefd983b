___TERMS_OF_SERVICE___

By creating or modifying this file you agree to Google Tag Manager's Community
Template Gallery Developer Terms of Service available at
https://developers.google.com/tag-manager/gallery-tos (or such other URL as
Google may provide), as modified from time to time.


___INFO___

{
  "type": "TAG",
  "id": "cvt_temp_public_id",
  "version": 1,
  "securityGroups": [],
  "displayName": "Threadline",
  "categories": [
    "ANALYTICS",
    "PERSONALIZATION"
  ],
  "brand": {
    "id": "brand_dummy",
    "displayName": "Threadline"
  },
  "description": "Consent-first customer events and on-device decisions. Initialise once (Initialization - All Pages), then track events from your triggers. Loads threadline.js from your host; see docs/tag-managers.md.",
  "containerContexts": [
    "WEB"
  ]
}


___TEMPLATE_PARAMETERS___

[
  {
    "type": "SELECT",
    "name": "mode",
    "displayName": "What this tag does",
    "macrosInSelect": false,
    "selectItems": [
      {
        "value": "init",
        "displayValue": "Initialise (load the script, create the client)"
      },
      {
        "value": "track",
        "displayValue": "Track an event"
      },
      {
        "value": "page",
        "displayValue": "Record a page view"
      },
      {
        "value": "consent",
        "displayValue": "Set consent"
      }
    ],
    "simpleValueType": true,
    "defaultValue": "init"
  },
  {
    "type": "TEXT",
    "name": "scriptUrl",
    "displayName": "threadline.js URL (sdk_wasm_bg.wasm must sit beside it)",
    "simpleValueType": true,
    "valueValidators": [
      {
        "type": "NON_EMPTY"
      },
      {
        "type": "REGEX",
        "args": [
          "^https://.*"
        ]
      }
    ],
    "help": "Also edit this template's 'Injects scripts' permission to match this URL.",
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "endpoint",
    "displayName": "Collector URL",
    "simpleValueType": true,
    "valueValidators": [
      {
        "type": "NON_EMPTY"
      }
    ],
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "writeKey",
    "displayName": "Write key",
    "simpleValueType": true,
    "valueValidators": [
      {
        "type": "NON_EMPTY"
      }
    ],
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "SELECT",
    "name": "consentDefault",
    "displayName": "Consent before the visitor answers",
    "macrosInSelect": false,
    "selectItems": [
      {
        "value": "pending",
        "displayValue": "Pending (nothing sent or stored until consent)"
      },
      {
        "value": "granted",
        "displayValue": "Granted"
      }
    ],
    "simpleValueType": true,
    "defaultValue": "pending",
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "SIMPLE_TABLE",
    "name": "dataLayerEvents",
    "displayName": "dataLayer events to bridge (optional)",
    "simpleTableColumns": [
      {
        "defaultValue": "",
        "displayName": "dataLayer event",
        "name": "from",
        "type": "TEXT"
      },
      {
        "defaultValue": "",
        "displayName": "Threadline event",
        "name": "to",
        "type": "TEXT"
      }
    ],
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "dataLayerProperties",
    "displayName": "Key holding the properties (e.g. ecommerce; empty: the whole push)",
    "simpleValueType": true,
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "init",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "eventName",
    "displayName": "Event name",
    "simpleValueType": true,
    "valueValidators": [
      {
        "type": "NON_EMPTY"
      }
    ],
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "track",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "TEXT",
    "name": "pageName",
    "displayName": "Page name (optional)",
    "simpleValueType": true,
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "page",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "SIMPLE_TABLE",
    "name": "properties",
    "displayName": "Properties",
    "simpleTableColumns": [
      {
        "defaultValue": "",
        "displayName": "Name",
        "name": "name",
        "type": "TEXT"
      },
      {
        "defaultValue": "",
        "displayName": "Value",
        "name": "value",
        "type": "TEXT"
      }
    ],
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "track",
        "type": "EQUALS"
      },
      {
        "paramName": "mode",
        "paramValue": "page",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "SELECT",
    "name": "analytics",
    "displayName": "analytics",
    "macrosInSelect": true,
    "selectItems": [
      {
        "value": "granted",
        "displayValue": "granted"
      },
      {
        "value": "denied",
        "displayValue": "denied"
      },
      {
        "value": "",
        "displayValue": "unchanged"
      }
    ],
    "simpleValueType": true,
    "defaultValue": "",
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "consent",
        "type": "EQUALS"
      }
    ]
  },
  {
    "type": "SELECT",
    "name": "personalization",
    "displayName": "personalization",
    "macrosInSelect": true,
    "selectItems": [
      {
        "value": "granted",
        "displayValue": "granted"
      },
      {
        "value": "denied",
        "displayValue": "denied"
      },
      {
        "value": "",
        "displayValue": "unchanged"
      }
    ],
    "simpleValueType": true,
    "defaultValue": "",
    "enablingConditions": [
      {
        "paramName": "mode",
        "paramValue": "consent",
        "type": "EQUALS"
      }
    ]
  }
]


___SANDBOXED_JS_FOR_WEB_TEMPLATE___

// Threadline tag (GTM sandboxed JavaScript). Commands go to the same
// queue as the inline snippet's: `threadline.q` while threadline.js is
// loading, `threadline(...)` itself once it has loaded.
const callInWindow = require('callInWindow');
const copyFromWindow = require('copyFromWindow');
const createQueue = require('createQueue');
const injectScript = require('injectScript');
const setInWindow = require('setInWindow');
const log = require('logToConsole');
const Object = require('Object');

function command(args) {
  if (copyFromWindow('threadline.loaded') === true) {
    callInWindow('threadline', args[0], args[1], args[2]);
    return;
  }
  if (copyFromWindow('threadline') === undefined) {
    // The stub: threadline.js replays `threadline.q` in order when it runs.
    setInWindow('threadline', { q: [] }, false);
  }
  createQueue('threadline.q')(args);
}

function table(rows, key, value) {
  const out = {};
  if (!rows) return out;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i][key]) out[rows[i][key]] = rows[i][value];
  }
  return out;
}

if (data.mode === 'init') {
  const options = {
    endpoint: data.endpoint,
    writeKey: data.writeKey,
    consent: { default: data.consentDefault || 'pending' },
  };
  const events = table(data.dataLayerEvents, 'from', 'to');
  if (Object.keys(events).length > 0) {
    options.dataLayer = { events: events };
    if (data.dataLayerProperties) options.dataLayer.properties = data.dataLayerProperties;
  }
  command(['init', options]);
  // The cache token makes every Threadline tag on the page share one script.
  injectScript(data.scriptUrl, data.gtmOnSuccess, function () {
    log('Threadline: threadline.js could not be loaded from', data.scriptUrl);
    data.gtmOnFailure();
  }, 'threadline');
} else if (data.mode === 'track') {
  command(['track', data.eventName, table(data.properties, 'name', 'value')]);
} else if (data.mode === 'page') {
  command(['page', data.pageName || undefined, table(data.properties, 'name', 'value')]);
} else if (data.mode === 'consent') {
  const choices = {};
  if (data.analytics) choices.analytics = data.analytics;
  if (data.personalization) choices.personalization = data.personalization;
  command(['consent', choices]);
}
if (data.mode !== 'init') data.gtmOnSuccess();


___WEB_PERMISSIONS___

[
  {
    "instance": {
      "key": {
        "publicId": "inject_script",
        "versionId": "1"
      },
      "param": [
        {
          "key": "urls",
          "value": {
            "type": 2,
            "listItem": [
              {
                "type": 1,
                "string": "https://cdn.example.com/threadline/*"
              }
            ]
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "access_globals",
        "versionId": "1"
      },
      "param": [
        {
          "key": "keys",
          "value": {
            "type": 2,
            "listItem": [
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "key"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  },
                  {
                    "type": 1,
                    "string": "execute"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "threadline"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": true
                  }
                ]
              },
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "key"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  },
                  {
                    "type": 1,
                    "string": "execute"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "threadline.q"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": false
                  }
                ]
              },
              {
                "type": 3,
                "mapKey": [
                  {
                    "type": 1,
                    "string": "key"
                  },
                  {
                    "type": 1,
                    "string": "read"
                  },
                  {
                    "type": 1,
                    "string": "write"
                  },
                  {
                    "type": 1,
                    "string": "execute"
                  }
                ],
                "mapValue": [
                  {
                    "type": 1,
                    "string": "threadline.loaded"
                  },
                  {
                    "type": 8,
                    "boolean": true
                  },
                  {
                    "type": 8,
                    "boolean": false
                  },
                  {
                    "type": 8,
                    "boolean": false
                  }
                ]
              }
            ]
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  },
  {
    "instance": {
      "key": {
        "publicId": "logging",
        "versionId": "1"
      },
      "param": [
        {
          "key": "environments",
          "value": {
            "type": 1,
            "string": "debug"
          }
        }
      ]
    },
    "clientAnnotations": {
      "isEditedByUser": true
    },
    "isRequired": true
  }
]


___TESTS___

scenarios:
- name: Initialise queues init and injects the script once
  code: |-
    let injected = 0;
    mock('injectScript', (url, onSuccess, onFailure, token) => {
      injected++;
      assertThat(url).isEqualTo('https://cdn.example.com/threadline/0.1.0/threadline.js');
      assertThat(token).isEqualTo('threadline');
      onSuccess();
    });
    runCode({ mode: 'init', scriptUrl: 'https://cdn.example.com/threadline/0.1.0/threadline.js',
      endpoint: 'https://collect.example.com', writeKey: 'k', consentDefault: 'pending',
      dataLayerEvents: [{ from: 'purchase', to: 'Order Completed' }], dataLayerProperties: 'ecommerce' });
    assertThat(injected).isEqualTo(1);
    assertApi('gtmOnSuccess').wasCalled();
    const q = require('copyFromWindow')('threadline.q');
    assertThat(q.length).isEqualTo(1);
    assertThat(q[0][0]).isEqualTo('init');
    assertThat(q[0][1].dataLayer.events.purchase).isEqualTo('Order Completed');
- name: Track goes through the queue
  code: |-
    runCode({ mode: 'track', eventName: 'Newsletter Signup', properties: [{ name: 'form', value: 'footer' }] });
    const q = require('copyFromWindow')('threadline.q');
    assertThat(q[q.length - 1][1]).isEqualTo('Newsletter Signup');
    assertThat(q[q.length - 1][2].form).isEqualTo('footer');
    assertApi('gtmOnSuccess').wasCalled();


___NOTES___

Threadline tag template: see docs/tag-managers.md. Edit the 'Injects scripts' URL pattern to where you host threadline.js.
